import Foundation
import Synchronization
import Testing
import TestSupport

@testable import MemoryStore

@Suite("Durable namespaces", .defaultPass)
struct MemoryNamespaceTests {
    func directory() -> String {
        NSTemporaryDirectory() + "memory-test-\(UUID().uuidString)/ns"
    }

    func memory(_ key: String, _ values: [Float], content: String? = nil, color: String = "red") -> StoredMemory {
        StoredMemory(key: key, content: content ?? "text of \(key)", metadata: #"{"color":"\#(color)"}"#, attributes: ["color": color], vector: values)
    }

    @Test("store, get, retrieve and delete survive a reopen")
    func roundTrip() async throws {
        let path = directory()
        do {
            let store = try MemoryNamespace(directory: path, dimension: 3, embedder: "test")
            try await store.store([memory("a", [1, 0, 0]), memory("b", [0, 1, 0], color: "blue"), memory("c", [0, 0, 1])])
            #expect(try await store.delete("c"))
            #expect(try await !store.delete("c"))
            #expect(store.get("a")?.content == "text of a")
            let nearest = try store.retrieve([0.9, 0.1, 0], k: 5)
            #expect(nearest.map(\.0.key) == ["a", "b"])
            #expect(try store.retrieve([0, 1, 0], k: 5, filter: ["color": "red"]).map(\.0.key) == ["a"])
        }
        let reopened = try MemoryNamespace(directory: path, dimension: 3, embedder: "test")
        #expect(reopened.count == 2)
        #expect(reopened.get("b") == memory("b", [0, 1, 0], color: "blue"))
        #expect(reopened.get("c") == nil)
    }

    @Test("a torn log tail is cut off on reopen; every whole record survives")
    func tornTail() async throws {
        let path = directory()
        do {
            let store = try MemoryNamespace(directory: path, dimension: 2, embedder: "test")
            for index in 0..<20 { try await store.store([memory("k\(index)", [Float(index), 1])]) }
        }
        let logPath = path + "/wal.log"
        let whole = try Data(contentsOf: URL(fileURLWithPath: logPath))
        // A crash in the middle of the next append: a length and part of a record.
        var torn = whole
        torn.append(contentsOf: [40, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 1, 9, 9])
        try torn.write(to: URL(fileURLWithPath: logPath))
        let reopened = try MemoryNamespace(directory: path, dimension: 2, embedder: "test")
        #expect(reopened.count == 20)
        #expect(try Data(contentsOf: URL(fileURLWithPath: logPath)) == whole)
        // A flipped bit in the last record cannot be told from a torn write: it is cut, like a
        // torn tail, and its bytes kept in a side file beside the log.
        var flipped = whole
        flipped[flipped.count - 3] ^= 0xFF
        try flipped.write(to: URL(fileURLWithPath: logPath))
        let again = try MemoryNamespace(directory: path, dimension: 2, embedder: "test")
        #expect(again.count == 19)
        #expect(again.get("k19") == nil)
        let sides = try FileManager.default.contentsOfDirectory(atPath: path).filter { $0.hasPrefix("wal.log.torn-") }
        #expect(sides.count == 2)
        let cut = try sides.map { try Data(contentsOf: URL(fileURLWithPath: path + "/" + $0)) }
        #expect(cut.contains(Data([40, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 1, 9, 9])))
        #expect(cut.contains { $0.count > 12 && flipped.suffix($0.count) == $0 })
    }

    @Test("compaction writes a snapshot and empties the log; both reload")
    func compaction() async throws {
        let path = directory()
        do {
            let store = try MemoryNamespace(directory: path, dimension: 2, embedder: "test")
            try await store.store((0..<50).map { memory("k\($0)", [Float($0), 0]) })
            try await store.delete("k0")
            try await store.compact()
            #expect(store.stats().logBytes == WriteAheadLog.headerSize)
            #expect(store.stats().lastCompaction != nil)
            try await store.store([memory("after", [100, 100])])
        }
        let reopened = try MemoryNamespace(directory: path, dimension: 2, embedder: "test")
        #expect(reopened.count == 50)
        #expect(reopened.get("k0") == nil)
        #expect(reopened.get("after") != nil)
        #expect(try reopened.retrieve([49, 0], k: 1).first?.0.key == "k49")
    }

    @Test("a namespace keeps its dimension and embedder: a mismatch is an error that says so")
    func mismatch() throws {
        let path = directory()
        _ = try MemoryNamespace(directory: path, dimension: 4, embedder: "hashed")
        #expect(throws: StoreError.self) { try MemoryNamespace(directory: path, dimension: 8, embedder: "hashed") }
        do {
            _ = try MemoryNamespace(directory: path, dimension: 4, embedder: "openai")
            Issue.record("opened with another embedder")
        } catch {
            #expect(error.description.contains("4-dimensional vectors from hashed"))
        }
    }

    @Test("concurrent writes share fsyncs (group commit) and are all durable")
    func groupCommit() async throws {
        let path = directory()
        let store = try MemoryNamespace(directory: path, dimension: 2, embedder: "test")
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<200 {
                group.addTask { try await store.store([memory("k\(index)", [Float(index), 1])]) }
            }
            try await group.waitForAll()
        }
        #expect(store.count == 200)
        #expect(store.flushes.load(ordering: .relaxed) < 200)
        let reopened = try MemoryNamespace(directory: path, dimension: 2, embedder: "test")
        #expect(reopened.count == 200)
    }

    @Test("two writers on one directory (as two workers on one volume) see each other and lose nothing")
    func twoWriters() async throws {
        let path = directory()
        let first = try MemoryNamespace(directory: path, dimension: 2, embedder: "test")
        let second = try MemoryNamespace(directory: path, dimension: 2, embedder: "test")
        try await first.store([memory("from-first", [1, 1])])
        #expect(second.get("from-first") != nil)
        try await second.delete("from-first")
        #expect(first.get("from-first") == nil)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<100 {
                let writer = index % 2 == 0 ? first : second
                group.addTask { try await writer.store([memory("k\(index)", [Float(index), 2])]) }
            }
            try await group.waitForAll()
        }
        #expect(first.count == 100)
        #expect(second.count == 100)
        // One compacts; the other notices the new generation and reloads.
        try await first.compact()
        try await first.store([memory("late", [5, 5])])
        #expect(second.get("late") != nil)
        #expect(second.count == 101)
        let reopened = try MemoryNamespace(directory: path, dimension: 2, embedder: "test")
        #expect(reopened.count == 101)
    }

    @Test("a wrong-length vector is refused and nothing is written")
    func badVector() async throws {
        let store = try MemoryNamespace(directory: directory(), dimension: 3, embedder: "test")
        await #expect(throws: StoreError.self) { try await store.store([memory("ok", [1, 2, 3]), memory("bad", [1, 2])]) }
        #expect(store.count == 0)
        #expect(store.stats().logBytes == WriteAheadLog.headerSize)
    }
}

import Foundation
import Testing
import TestSupport

@testable import MemoryStore

/// Damage that is not a torn tail is reported and the files are left exactly as they were, for
/// an operator to repair; nothing valid is ever cut away.
@Suite("Damaged files", .defaultPass)
struct LogDamageTests {
    func memory(_ key: String, _ values: [Float]) -> StoredMemory {
        StoredMemory(key: key, content: "text of \(key)", metadata: "{}", attributes: [:], vector: values)
    }

    /// A namespace of 100 records, one a write, closed; returns its directory.
    func hundredRecords() async throws -> String {
        let path = NSTemporaryDirectory() + "memory-damage-\(UUID().uuidString)/ns"
        let store = try MemoryNamespace(directory: path, dimension: 2, embedder: "test")
        // Keys of one length, so every record has the same size.
        for index in 0..<100 { try await store.store([memory("k\(index + 100)", [Float(index), 1])]) }
        return path
    }

    func expectRefused(_ path: String, mentioning text: String, sourceLocation: SourceLocation = #_sourceLocation) {
        do {
            _ = try MemoryNamespace(directory: path, dimension: 2, embedder: "test")
            Issue.record("a damaged namespace opened", sourceLocation: sourceLocation)
        } catch {
            #expect(error.description.contains("damaged"), "\(error)", sourceLocation: sourceLocation)
            #expect(error.description.contains(text), "\(error)", sourceLocation: sourceLocation)
        }
    }

    @Test("one flipped bit in the log header: opening fails naming the header; the log is not touched")
    func header() async throws {
        let path = try await hundredRecords()
        let log = URL(fileURLWithPath: path + "/wal.log")
        var bytes = try Data(contentsOf: log)
        bytes[10] ^= 0x04
        try bytes.write(to: log)
        expectRefused(path, mentioning: "header")
        #expect(try Data(contentsOf: log) == bytes)
        let reopened = try WriteAheadLog.open(path + "/wal.log")
        defer { reopened.close() }
        #expect(throws: StoreError.self) { try reopened.generation() }
    }

    @Test("a flipped byte in record 50 of 100: opening fails naming the offset; records 50-99 stay in the file")
    func middle() async throws {
        let path = try await hundredRecords()
        let log = URL(fileURLWithPath: path + "/wal.log")
        var bytes = try Data(contentsOf: log)
        let recordSize = (bytes.count - WriteAheadLog.headerSize) / 100
        let start = WriteAheadLog.headerSize + 50 * recordSize
        bytes[start + WriteAheadLog.recordHeaderSize + 3] ^= 0xFF
        try bytes.write(to: log)
        expectRefused(path, mentioning: "damaged at byte \(start) (a record fails its checksum), with valid records from byte \(start + recordSize)")
        #expect(try Data(contentsOf: log) == bytes)
    }

    @Test("damage appended while a namespace is open stops its writes, keeps its reads, and cuts nothing")
    func damageSeenByAnOpenNamespace() async throws {
        let path = try await hundredRecords()
        let store = try MemoryNamespace(directory: path, dimension: 2, embedder: "test")
        let log = URL(fileURLWithPath: path + "/wal.log")
        // Another writer's two records, the first damaged.
        let other = try MemoryNamespace(directory: path, dimension: 2, embedder: "test")
        try await other.store([memory("x", [5, 5])])
        try await other.store([memory("y", [6, 6])])
        var bytes = try Data(contentsOf: log)
        let recordSize = (bytes.count - WriteAheadLog.headerSize) / 102
        bytes[bytes.count - recordSize - 2] ^= 0xFF
        try bytes.write(to: log)
        #expect(store.count == 100)
        await #expect(throws: StoreError.self) { try await store.store([memory("z", [7, 7])]) }
        #expect(store.writeFailure?.description.contains("damaged") == true)
        #expect(try Data(contentsOf: log) == bytes)
        #expect(store.get("k105") != nil)
    }

    @Test("a missing snapshot beside a log with records is damage, not an empty namespace")
    func missingSnapshot() async throws {
        let path = try await hundredRecords()
        try FileManager.default.removeItem(atPath: path + "/snapshot.bin")
        let log = try Data(contentsOf: URL(fileURLWithPath: path + "/wal.log"))
        #expect(throws: StoreError.self) { try MemoryNamespace.layout(of: path) }
        expectRefused(path, mentioning: "snapshot.bin is missing")
        #expect(!FileManager.default.fileExists(atPath: path + "/snapshot.bin"))
        #expect(try Data(contentsOf: URL(fileURLWithPath: path + "/wal.log")) == log)
    }

    @Test("a data directory that is a regular file, or read-only, is refused up front")
    func unusableDirectory() throws {
        let file = NSTemporaryDirectory() + "memory-file-\(UUID().uuidString)"
        FileManager.default.createFile(atPath: file, contents: Data("x".utf8))
        defer { unlink(file) }
        #expect(throws: StoreError.self) { try MemoryNamespace.prepareDirectory(file) }
        #expect(throws: StoreError.self) { try MemoryNamespace.prepareDirectory(file + "/below") }
        let directory = NSTemporaryDirectory() + "memory-dir-\(UUID().uuidString)"
        try MemoryNamespace.prepareDirectory(directory)
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory).isEmpty)
    }

    @Test("removing an empty namespace removes only an empty one")
    func removeIfEmpty() async throws {
        let path = try await hundredRecords()
        MemoryNamespace.removeIfEmpty(path)
        #expect(try MemoryNamespace(directory: path, dimension: 2, embedder: "test").count == 100)
        let empty = NSTemporaryDirectory() + "memory-empty-\(UUID().uuidString)/ns"
        _ = try MemoryNamespace(directory: empty, dimension: 2, embedder: "test")
        MemoryNamespace.removeIfEmpty(empty)
        #expect(!FileManager.default.fileExists(atPath: empty))
    }
}

import Foundation
import Testing
import TestSupport

@testable import MemoryStore

/// A volume that fills up: every write acknowledged before, during and after the full disk is
/// there after a restart, and a failed append leaves no partial record behind.
@Suite("A full disk", .defaultPass, .enabled(if: SmallVolume.mountable, "\(SmallVolume.refusedMessage)"))
struct DiskFullTests {
    func memory(_ key: String) -> StoredMemory {
        StoredMemory(
            key: key, content: String(repeating: "x", count: 900) + key, metadata: "{}", attributes: [:],
            vector: (0..<16).map { Float($0) + Float(key.utf8.count) })
    }

    @Test("appends that fail on a full disk are cut back; writes resume when space is freed; nothing acknowledged is lost")
    func fullDisk() async throws {
        let volume = try SmallVolume(bytes: 256 * 1024)
        defer { volume.unmount() }
        let path = volume.path + "/ns"
        let store = try MemoryNamespace(directory: path, dimension: 16, embedder: "test")
        store.compactionThreshold = Int.max
        let filler = volume.fill(leaving: 48 * 1024)
        var acknowledged: [String] = []
        var failures: [String] = []
        for index in 0..<200 where failures.count < 5 {
            do {
                try await store.store([memory("k\(index)")])
                acknowledged.append("k\(index)")
            } catch {
                failures.append("\(error)")
            }
        }
        #expect(!acknowledged.isEmpty)
        #expect(failures.count == 5, "the disk never filled")
        #expect(failures.allSatisfy { $0.contains("No space left") }, "\(failures)")
        // No partial record sits at the end of the log: it ends at the last acknowledged write.
        let log = try WriteAheadLog.open(path + "/wal.log")
        defer { log.close() }
        let read = try log.read(from: WriteAheadLog.headerSize)
        #expect(read.tail == .clean)
        #expect(read.entries.count == acknowledged.count)
        #expect(store.writeFailure == nil)

        // Space comes back: writes go on after the failures, and a restart finds every one.
        unlink(filler)
        for index in 200..<205 {
            try await store.store([memory("k\(index)")])
            acknowledged.append("k\(index)")
        }
        let reopened = try MemoryNamespace(directory: path, dimension: 16, embedder: "test")
        #expect(reopened.count == acknowledged.count)
        #expect(acknowledged.allSatisfy { reopened.get($0) != nil })
    }

    @Test("a compaction that meets a full disk fails alone: the write that set it off stands, and no temporary file remains")
    func compactionOnFullDisk() async throws {
        let volume = try SmallVolume(bytes: 256 * 1024)
        defer { volume.unmount() }
        let path = volume.path + "/ns"
        let store = try MemoryNamespace(directory: path, dimension: 16, embedder: "test")
        for index in 0..<20 { try await store.store([memory("k\(index)")]) }
        // Room for one more record, not for a snapshot of all of them.
        let filler = volume.fill(leaving: 8 * 1024)
        store.compactionThreshold = 1
        try await store.store([memory("last")])
        #expect(store.stats().compactionFailure?.contains("No space left") == true)
        #expect(!FileManager.default.fileExists(atPath: path + "/snapshot.bin.tmp"))
        unlink(filler)
        try await store.store([memory("after")])
        #expect(store.stats().compactionFailure == nil)
        let reopened = try MemoryNamespace(directory: path, dimension: 16, embedder: "test")
        #expect(reopened.count == 22)
    }
}

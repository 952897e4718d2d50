import Foundation
import Synchronization
import Testing
import TestSupport
import WorkerJSON
import WorkerRuntimeTesting

@Suite("The memory worker under SIGKILL", .tags(.heavy, .process), .pass(.heavy))
struct MemoryCrashTests {
    /// Starts `memory --local` on `directory` and waits until it is ready.
    static func startWorker(_ directory: URL) async throws -> LocalWorker {
        try await LocalWorker.start("memory", environment: ["MEMORY_DIR": directory.path, "WORKER_CONCURRENCY": "8"])
    }

    @Test("every acknowledged write survives a kill at a random moment, and the files load", arguments: [0, 150, 600])
    func killDuringWrites(killAfterMilliseconds: Int) async throws {
        try await withTemporaryDirectory("memory-crash") { directory in
            try await killDuringWrites(directory, killAfterMilliseconds: killAfterMilliseconds)
        }
    }

    func killDuringWrites(_ directory: URL, killAfterMilliseconds: Int) async throws {
        let worker = try await Self.startWorker(directory)
        let acknowledged = Acknowledged()
        let writers = Task {
            await withTaskGroup(of: Void.self) { group in
                for writer in 0..<8 {
                    group.addTask {
                        for index in 0..<10_000 {
                            let key = "w\(writer)-\(index)"
                            let input: JSONValue = index % 5 == 0
                                ? ["action": "store_batch", "items": [["key": .string(key), "content": .string("batch text \(key)")],
                                                                      ["key": .string(key + "b"), "content": "second"]]]
                                : ["action": "store", "key": .string(key), "content": .string("text number \(index) of writer \(writer)")]
                            guard let answer = try? await worker.runSync(input, timeout: .seconds(20)), answer["status"] == "COMPLETED"
                            else { return }
                            acknowledged.keys.withLock { $0.append(key) }
                        }
                    }
                }
            }
        }
        // Writes are flowing before the kill lands, at a different moment in each case.
        try await waitUntil(timeout: .seconds(30)) { acknowledged.keys.withLock { $0.count } >= 20 }
        try await Task.sleep(for: .milliseconds(killAfterMilliseconds))
        worker.stop(SIGKILL)
        _ = try await worker.process.wait()
        await writers.value
        let acked = acknowledged.keys.withLock { $0 }
        #expect(!acked.isEmpty)

        let restarted = try await Self.startWorker(directory)
        defer { restarted.stop() }
        var missing: [String] = []
        for key in acked {
            let answer = try await restarted.runSync(["action": "get", "key": .string(key)])
            if answer["output"]?["found"] != true { missing.append(key) }
        }
        #expect(missing.isEmpty, "acknowledged but lost: \(missing.prefix(5))")
        let stats = try await restarted.runSync(["action": "stats"])
        #expect(try #require(stats["output"]?["count"]?.intValue) >= acked.count)
    }
}

final class Acknowledged: Sendable {
    let keys = Mutex<[String]>([])
}

@Suite("Two memory workers on one volume", .tags(.heavy, .process), .pass(.heavy))
struct MemorySharedVolumeTests {
    @Test("writes from either worker are seen by the other and none is lost")
    func twoWorkers() async throws {
        try await withTemporaryDirectory("memory-shared") { directory in
            let a = try await MemoryCrashTests.startWorker(directory)
            let b = try await MemoryCrashTests.startWorker(directory)
            defer {
                a.stop()
                b.stop()
            }
            _ = try await a.runSync(["action": "store", "key": "from-a", "content": "written by worker a"])
            #expect(try await b.runSync(["action": "get", "key": "from-a"])["output"]?["found"] == true)
            try await withThrowingTaskGroup(of: Void.self) { group in
                for index in 0..<60 {
                    let worker = index % 2 == 0 ? a : b
                    group.addTask {
                        let answer = try await worker.runSync(
                            ["action": "store", "key": .string("k\(index)"), "content": .string("text \(index)")])
                        #expect(answer["status"] == "COMPLETED")
                    }
                }
                try await group.waitForAll()
            }
            #expect(try await a.runSync(["action": "stats"])["output"]?["count"] == 61)
            #expect(try await b.runSync(["action": "stats"])["output"]?["count"] == 61)
            _ = try await b.runSync(["action": "delete", "key": "from-a"])
            #expect(try await a.runSync(["action": "get", "key": "from-a"])["output"]?["found"] == false)
        }
    }
}

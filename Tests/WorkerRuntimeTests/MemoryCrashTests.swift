import Foundation
import Synchronization
import Testing
import WorkerRuntime
import WorkerRuntimeTesting

@Suite("The memory worker under SIGKILL")
struct MemoryCrashTests {
    /// Starts `memory --local` on `directory` and waits until it is ready.
    func startWorker(_ directory: String, port: Int) async throws -> ChildProcess {
        let worker = try ChildProcess(
            "memory", arguments: ["--local", "--port", "\(port)"],
            environment: ["MEMORY_DIR": directory, "WORKER_CONCURRENCY": "8", "RUNPOD_LOG_LEVEL": "ERROR"])
        try await waitUntilAsync(timeout: .seconds(20)) {
            (try? await CurlHTTPClient.shared.execute(HTTPClientRequest(url: "http://127.0.0.1:\(port)/ping")))?.status == 200
        }
        return worker
    }

    func call(_ port: Int, _ input: JSONValue) async throws -> JSONValue {
        let response = try await CurlHTTPClient.shared.execute(
            try .json(url: "http://127.0.0.1:\(port)/runsync", body: ["input": input], timeout: .seconds(20)))
        return try JSONValue.parse(response.body)
    }

    @Test("every acknowledged write survives a kill at a random moment, and the files load", arguments: [0, 150, 600])
    func killDuringWrites(killAfterMilliseconds: Int) async throws {
        let directory = NSTemporaryDirectory() + "memory-crash-\(UUID().uuidString)"
        let port = try freePort()
        let worker = try await startWorker(directory, port: port)
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
                            guard let answer = try? await call(port, input), answer["status"] == "COMPLETED" else { return }
                            acknowledged.keys.withLock { $0.append(key) }
                        }
                    }
                }
            }
        }
        // Writes are flowing before the kill lands, at a different moment in each case.
        try await waitUntil(timeout: .seconds(30)) { acknowledged.keys.withLock { $0.count } >= 20 }
        try await Task.sleep(for: .milliseconds(killAfterMilliseconds))
        worker.signal(SIGKILL)
        _ = try await worker.wait()
        await writers.value
        let acked = acknowledged.keys.withLock { $0 }
        #expect(!acked.isEmpty)

        let restarted = try await startWorker(directory, port: try freePort())
        defer { restarted.signal(SIGTERM) }
        let restartedPort = Int(restarted.process.arguments![2])!
        var missing: [String] = []
        for key in acked {
            let answer = try await call(restartedPort, ["action": "get", "key": .string(key)])
            if answer["output"]?["found"] != true { missing.append(key) }
        }
        #expect(missing.isEmpty, "acknowledged but lost: \(missing.prefix(5))")
        let stats = try await call(restartedPort, ["action": "stats"])
        #expect(try #require(stats["output"]?["count"]?.intValue) >= acked.count)
    }
}

final class Acknowledged: Sendable {
    let keys = Mutex<[String]>([])
}

@Suite("Two memory workers on one volume")
struct MemorySharedVolumeTests {
    @Test("writes from either worker are seen by the other and none is lost")
    func twoWorkers() async throws {
        let directory = NSTemporaryDirectory() + "memory-shared-\(UUID().uuidString)"
        let crash = MemoryCrashTests()
        let (portA, portB) = (try freePort(), try freePort())
        let a = try await crash.startWorker(directory, port: portA)
        let b = try await crash.startWorker(directory, port: portB)
        defer {
            a.signal(SIGTERM)
            b.signal(SIGTERM)
        }
        _ = try await crash.call(portA, ["action": "store", "key": "from-a", "content": "written by worker a"])
        #expect(try await crash.call(portB, ["action": "get", "key": "from-a"])["output"]?["found"] == true)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<60 {
                let port = index % 2 == 0 ? portA : portB
                group.addTask {
                    let answer = try await crash.call(port, ["action": "store", "key": .string("k\(index)"), "content": .string("text \(index)")])
                    #expect(answer["status"] == "COMPLETED")
                }
            }
            try await group.waitForAll()
        }
        #expect(try await crash.call(portA, ["action": "stats"])["output"]?["count"] == 61)
        #expect(try await crash.call(portB, ["action": "stats"])["output"]?["count"] == 61)
        _ = try await crash.call(portB, ["action": "delete", "key": "from-a"])
        #expect(try await crash.call(portA, ["action": "get", "key": "from-a"])["output"]?["found"] == false)
    }
}

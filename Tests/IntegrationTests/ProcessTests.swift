import CurlHTTP
import Foundation
import Logging
import Testing
import TestSupport
import WorkerJSON
import WorkerRuntimeTesting

@Suite("Worker processes", .tags(.process), .defaultPass)
struct ProcessTests {
    let client = CurlHTTPClient(name: "process-tests")

    @Test("without the platform's variables and test_input.json, exit 1 saying so (checklist 1)")
    func noTestInput() async throws {
        try await withTemporaryDirectory { directory in
            let child = try ChildProcess("echo", directory: directory)
            #expect(try await child.wait() == 1)
            #expect(child.stderr.contains("test_input.json not found"))
        }
    }

    @Test("test_input.json is run once, with id local_test, result printed, exit 0 (checklist 1, 2)")
    func testInputFile() async throws {
        try await withTemporaryDirectory { directory in try await testInputFile(in: directory) }
    }

    func testInputFile(in directory: URL) async throws {
        try #"{"input": {"hello": "file", "progress": 2}}"#.write(
            to: directory.appendingPathComponent("test_input.json"), atomically: true, encoding: .utf8)
        let child = try ChildProcess("echo", directory: directory)
        #expect(try await child.wait() == 0)
        #expect(child.stdout.contains(#"Job result: {"output":{"hello":"file","progress":2}}"#))
        #expect(child.stdout.contains(#"Progress: {"step":1}"#))
        #expect(child.stderr.contains("local_test"))

        // The flag wins over the file, and an explicit id is kept.
        let flagged = try ChildProcess(
            "echo", arguments: ["--test_input", #"{"id": "mine", "input": {"from": "flag"}}"#], directory: directory)
        #expect(try await flagged.wait() == 0)
        #expect(flagged.stdout.contains(#"{"output":{"from":"flag"}}"#))
        #expect(flagged.stderr.contains("mine"))
    }

    @Test("a raised or returned error exits 1 (checklist 3)")
    func failures() async throws {
        let raised = try ChildProcess("echo", arguments: ["--test-input", #"{"input": {"fail": "boom"}}"#])
        #expect(try await raised.wait() == 1)
        #expect(raised.stderr.contains("boom"))
        let returned = try ChildProcess("echo", arguments: ["--test-input", #"{"input": {"return_error": "nope"}}"#])
        #expect(try await returned.wait() == 1)
        #expect(returned.stdout.contains(#"Job result: {"error":"nope"}"#))
        let noInput = try ChildProcess("echo", arguments: ["--test-input", #"{"other": 1}"#])
        #expect(try await noInput.wait() == 1)
        #expect(noInput.stderr.contains("Job has no input parameter"))
        let badJSON = try ChildProcess("echo", arguments: ["--test-input", "{not json"])
        #expect(try await badJSON.wait() == 1)
        #expect(badJSON.stderr.contains("not valid JSON"))
    }

    @Test("a streaming job is iterated in one-shot mode, its chunks printed")
    func streamedOneShot() async throws {
        let child = try ChildProcess("echo", arguments: ["--test-input", #"{"input": {"stream": 2}}"#])
        #expect(try await child.wait() == 0)
        #expect(child.stdout.contains(#"Stream chunk: {"chunk":0}"#))
        #expect(child.stdout.contains(#"Stream chunk: {"chunk":1}"#))
        #expect(child.stdout.contains(#"Job result: {"output":[{"chunk":0},{"chunk":1}]}"#))
    }

    @Test("a bad environment value stops start-up naming the variable")
    func badEnvironment() async throws {
        let child = try ChildProcess(
            "echo", arguments: ["--test-input", #"{"input": 1}"#], environment: ["RUNPOD_PING_INTERVAL": "-5"])
        #expect(try await child.wait() == 1)
        #expect(child.stderr.contains("RUNPOD_PING_INTERVAL"))
    }

    @Test("with RUNPOD_ENDPOINT_ID set, logs are JSON lines with requestId, message, level (checklist 31)")
    func jsonLogs() async throws {
        let child = try ChildProcess(
            "echo", arguments: ["--test-input", #"{"id": "j-9", "input": 1}"#], environment: ["RUNPOD_ENDPOINT_ID": "ep1"])
        #expect(try await child.wait() == 0)
        let lines = child.stderr.split(separator: "\n").map(String.init)
        #expect(!lines.isEmpty)
        for line in lines {
            let parsed = try JSONValue.parse(line)
            #expect(parsed["message"]?.stringValue != nil)
            #expect(["TRACE", "DEBUG", "INFO", "WARN", "ERROR"].contains(parsed["level"]?.stringValue ?? ""))
            #expect(parsed.objectValue?.keys.sorted() == ["level", "message", "requestId"])
        }
        #expect(lines.contains { (try? JSONValue.parse($0))?["requestId"] == "j-9" })
    }

    @Test("PORT set: a load-balancing worker on that port, /ping on PORT_HEALTH, worker id on every response")
    func loadBalancing() async throws {
        // Port 0: each listener picks a free port and logs it.
        let worker = try ChildProcess("echo", environment: ["PORT": "0", "PORT_HEALTH": "0", "RUNPOD_POD_ID": "lb-worker"])
        defer { worker.signal(SIGTERM) }
        let port = try await worker.servingPort()
        try await waitUntil("the health check's port in the log") { ChildProcess.healthPort(in: worker.stderr) != nil }
        let healthPort = try #require(ChildProcess.healthPort(in: worker.stderr))
        let client = self.client
        try await waitUntil(timeout: .seconds(20)) {
            (try? await client.execute(HTTPClientRequest(url: "http://127.0.0.1:\(healthPort)/ping")))?.status == 200
        }
        let answer = try await client.execute(
            try .json(url: "http://127.0.0.1:\(port)/runsync", body: ["input": ["lb": true]]))
        #expect(answer.status == 200)
        #expect(try JSONValue.parse(answer.body)["output"] == ["lb": true])
        #expect(answer.header("X-Runpod-Worker-Id") == "lb-worker")
        // The health check lives on its own port only.
        #expect(try await client.execute(HTTPClientRequest(url: "http://127.0.0.1:\(port)/ping")).status == 404)
        worker.signal(SIGTERM)
        #expect(try await worker.wait() == 0)
    }

    @Test("SIGTERM: stop taking jobs, finish and post the running one, exit 0 (checklist 29)")
    func sigterm() async throws {
        let platform = try await ExternalPlatform.start()
        defer { platform.stop() }
        let worker = try ChildProcess("echo", environment: platform.environment)
        try await platform.enqueue([["id": "slow", "input": ["sleep": 1.5, "n": 1]]])
        try await waitUntil { try await platform.requests().contains { $0["operation"] == "job-take" } }
        try await Task.sleep(for: .milliseconds(300))
        worker.signal(SIGTERM)
        #expect(try await worker.wait(timeout: .seconds(15)) == 0)
        let done = try await platform.requests().filter { $0["operation"] == "job-done" }
        #expect(done.count == 1)
        #expect(done.first?["target"]?.stringValue?.contains("/job-done/w42/slow?") == true)
        #expect(try JSONValue.parse(done.first?["body"]?.stringValue ?? "") == ["output": ["sleep": 1.5, "n": 1]])
    }

    @Test("a second SIGTERM during a graceful shutdown exits at once, saying what it abandons")
    func secondSigterm() async throws {
        let platform = try await ExternalPlatform.start()
        defer { platform.stop() }
        let worker = try ChildProcess("echo", environment: platform.environment)
        try await platform.enqueue([["id": "long", "input": ["sleep": 60]]])
        try await waitUntil { try await platform.requests().contains { $0["operation"] == "job-take" } }
        try await Task.sleep(for: .milliseconds(300))
        worker.signal(SIGTERM)
        try await waitUntil("the graceful shutdown to begin") { worker.stderr.contains("Shutdown requested") }
        let second = ContinuousClock.now
        worker.signal(SIGTERM)
        #expect(try await worker.wait(timeout: .seconds(10)) == 143)
        #expect(ContinuousClock.now - second < .seconds(5))
        #expect(worker.stderr.contains("exiting now; running jobs and undelivered results are abandoned"))
    }
}

/// Tests that load every core: run alone (the heavy pass of scripts/test.sh), so they neither
/// disturb nor are disturbed by the timing of other tests.
@Suite("Under load", .tags(.load, .process), .pass(.load))
struct LoadTests {
    @Test("the ping keeps its cadence while CPU-bound jobs hold every cooperative thread (checklist 25)")
    func pingUnderLoad() async throws {
        let platform = try await ExternalPlatform.start()
        defer { platform.stop() }
        // More CPU-bound jobs than cores: every cooperative thread of the worker is busy.
        let jobs = ProcessInfo.processInfo.activeProcessorCount + 2
        var env = platform.environment
        env["RUNPOD_PING_INTERVAL"] = "100"
        env["WORKER_CONCURRENCY"] = "\(jobs)"
        try await platform.enqueue(.array((0..<jobs).map { ["id": .string("cpu-\($0)"), "input": ["cpu": 1.5]] }))
        let worker = try ChildProcess("echo", environment: env)
        try await waitUntil(timeout: .seconds(30)) {
            try await platform.requests().filter { $0["operation"] == "job-done" }.count == jobs
        }
        worker.signal(SIGTERM)
        #expect(try await worker.wait() == 0)
        let requests = try await platform.requests()
        let busyPings = requests.filter { $0["operation"] == "ping" && $0["target"]?.stringValue?.contains("job_id=cpu-") == true }
        let first = try #require(busyPings.first?["epoch_ns"]?.intValue)
        let last = try #require(busyPings.last?["epoch_ns"]?.intValue)
        // ~1.5 s or more of saturated CPU at a 100 ms interval: a starved heartbeat would send one or two.
        #expect(busyPings.count >= 8, "only \(busyPings.count) pings while jobs ran")
        #expect(last - first >= 700_000_000)
    }
}

import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import Synchronization
import Testing
import TestSupport
import WorkerJSON
import WorkerRuntimeTesting

@testable import WorkerEndpointServer
@testable import WorkerRuntime

@Suite("The endpoint API server", .defaultPass)
struct EndpointServerTests {
    @Test("/runsync returns the finished job with delayTime and executionTime, under / and /v2/{id}/")
    func runsync() async throws {
        try await withServer { client, _ in
            for prefix in ["", "/v2/my-endpoint"] {
                let (status, body, _) = try await client.call(.post, "\(prefix)/runsync", json: ["input": ["a": 1]])
                #expect(status == 200)
                #expect(body?["status"] == "COMPLETED")
                #expect(body?["output"] == ["a": 1])
                #expect(body?["id"]?.stringValue?.hasPrefix("sync-") == true)
                #expect(body?["delayTime"]?.intValue != nil)
                #expect(body?["executionTime"]?.intValue != nil)
            }
        }
    }

    @Test("input may be any JSON value")
    func anyInput() async throws {
        try await withServer { client, _ in
            for input: JSONValue in ["text", 42, nil, [1, 2], true] {
                let (_, body, _) = try await client.call(.post, "/runsync", json: ["input": input])
                #expect(body?["output"] == input)
            }
        }
    }

    @Test("/run queues, runs in the background, and /status (GET and POST) shows the lifecycle")
    func lifecycle() async throws {
        let (handler, gate) = gatedEcho(blocking: "first")
        try await withServer(handler) { client, _ in
            let first = try await client.call(.post, "/run", json: ["input": "first"])
            #expect(first.body?["status"] == "IN_QUEUE")
            let second = try await client.call(.post, "/v2/ep/run", json: ["input": ["n": 2]])
            let firstID = try #require(first.body?["id"]?.stringValue)
            let secondID = try #require(second.body?["id"]?.stringValue)
            try await client.waitForStatus(firstID, "IN_PROGRESS")
            // Concurrency 1: the second waits its turn.
            #expect(try await client.call(.post, "/status/\(secondID)").body?["status"] == "IN_QUEUE")
            try await Task.sleep(for: .milliseconds(300))
            gate.open()
            let done = try await client.waitForFinal(secondID)
            #expect(done["status"] == "COMPLETED")
            #expect(done["output"] == ["n": 2])
            #expect(try #require(done["delayTime"]?.intValue) >= 250)
            let firstDone = try await client.waitForFinal(firstID, prefix: "/v2/other")
            #expect(try #require(firstDone["executionTime"]?.intValue) >= 280)
        }
    }

    @Test("a handler error is FAILED with the error")
    func failed() async throws {
        try await withServer { client, _ in
            let (status, body, _) = try await client.call(.post, "/runsync", json: ["input": ["fail": "boom"]])
            #expect(status == 200)
            #expect(body?["status"] == "FAILED")
            #expect(body?["error"]?.stringValue?.contains("boom") == true)
            let returned = try await client.call(.post, "/runsync", json: ["input": ["return_error": "nope"]])
            #expect(returned.body?["status"] == "FAILED")
            #expect(returned.body?["error"] == "nope")
        }
    }

    @Test("progress updates show in /status while the job runs")
    func progress() async throws {
        // The job waits until the test has seen its progress: no race with a busy machine.
        let seenProgress = AsyncSignalBox()
        let handler = ClosureHandler { _, context in
            context.progress(["step": 1])
            await seenProgress.wait()
            return "done"
        }
        try await withServer(handler) { client, _ in
            defer { seenProgress.open() }
            let id = try #require(try await client.call(.post, "/run", json: ["input": nil]).body?["id"]?.stringValue)
            let deadline = ContinuousClock.now + .seconds(10)
            var seen: JSONValue?
            while ContinuousClock.now < deadline {
                let body = try await client.call(.get, "/status/\(id)").body
                if body?["status"] == "IN_PROGRESS", let output = body?["output"] {
                    seen = output
                    break
                }
                try await Task.sleep(for: .milliseconds(5))
            }
            #expect(seen == ["step": 1])
            seenProgress.open()
            #expect(try await client.waitForFinal(id)["output"] == "done")
        }
    }

    @Test("/stream returns the chunks produced since the last poll, then the final status")
    func stream() async throws {
        let handler = StreamingClosureHandler { _, _, stream in
            try await stream.yield(["tok": 0])
            try await stream.yield(["tok": 1])
            try await Task.sleep(for: .milliseconds(300))
            try await stream.yield(["tok": 2])
        }
        try await withServer(handler) { client, _ in
            let id = try #require(try await client.call(.post, "/run", json: ["input": nil]).body?["id"]?.stringValue)
            var collected: [JSONValue] = []
            var polls = 0
            var final: JSONValue?
            while final == nil, polls < 500 {
                let body = try #require(try await client.call(.get, "/v2/e/stream/\(id)").body)
                collected += body["stream"]?.arrayValue ?? []
                if body["status"] == "COMPLETED" { final = body }
                polls += 1
                try await Task.sleep(for: .milliseconds(20))
            }
            #expect(collected == [["output": ["tok": 0]], ["output": ["tok": 1]], ["output": ["tok": 2]]])
            #expect(polls > 1)
            // The whole stream is the output of a finished streaming job.
            #expect(try await client.call(.get, "/status/\(id)").body?["output"] == [["tok": 0], ["tok": 1], ["tok": 2]])
        }
    }

    @Test("/cancel cancels the running handler task: CANCELLED, and nothing it produces later is kept")
    func cancelRunning() async throws {
        let cancelled = Atomic<Bool>(false)
        let handler = ClosureHandler { _, _ in
            do {
                try await Task.sleep(for: .seconds(30))
            } catch {
                cancelled.store(true, ordering: .relaxed)
            }
            return "late"
        }
        try await withServer(handler) { client, _ in
            let id = try #require(try await client.call(.post, "/run", json: ["input": nil]).body?["id"]?.stringValue)
            try await client.waitForStatus(id, "IN_PROGRESS")
            let (status, body, _) = try await client.call(.post, "/cancel/\(id)")
            #expect(status == 200)
            #expect(body == ["id": .string(id), "status": "CANCELLED"])
            try await waitUntil { cancelled.load(ordering: .relaxed) }
            try await Task.sleep(for: .milliseconds(50))
            let final = try await client.call(.get, "/status/\(id)").body
            #expect(final?["status"] == "CANCELLED")
            #expect(final?["output"] == nil)
        }
    }

    @Test("a cancelled queued job never runs; unknown ids are 404")
    func cancelQueued() async throws {
        let runs = Atomic<Int>(0)
        let gate = AsyncSignalBox()
        let handler = ClosureHandler { input, _ in
            runs.add(1, ordering: .relaxed)
            await gate.wait()
            return input
        }
        try await withServer(handler) { client, _ in
            let first = try #require(try await client.call(.post, "/run", json: ["input": 1]).body?["id"]?.stringValue)
            let queued = try #require(try await client.call(.post, "/run", json: ["input": 2]).body?["id"]?.stringValue)
            #expect(try await client.call(.post, "/cancel/\(queued)").body?["status"] == "CANCELLED")
            gate.open()
            _ = try await client.waitForFinal(first)
            try await Task.sleep(for: .milliseconds(100))
            #expect(runs.load(ordering: .relaxed) == 1)
            #expect(try await client.call(.post, "/cancel/nope").status == 404)
            #expect(try await client.call(.get, "/status/nope").status == 404)
            #expect(try await client.call(.get, "/stream/nope").status == 404)
        }
    }

    @Test("policy.executionTimeout stops the job as TIMED_OUT")
    func executionTimeout() async throws {
        try await withServer { client, _ in
            let (_, body, _) = try await client.call(
                .post, "/runsync", json: ["input": ["sleep": 5], "policy": ["executionTimeout": 200]])
            #expect(body?["status"] == "TIMED_OUT")
            #expect(body?["error"]?.stringValue?.contains("execution timeout of 200 ms") == true)
        }
    }

    /// The job answers /status 3,500 s on the moved clock, and 404 200 s later (its hour is up).
    func expectKeptThenGone(
        _ id: String, client: some TestClientProtocol, server: EndpointServer, clock: TestClock,
        sourceLocation: SourceLocation = #_sourceLocation
    ) async throws {
        clock.advance(by: .seconds(3500))
        server.localStore.sweep()
        #expect(try await client.call(.get, "/status/\(id)").status == 200, sourceLocation: sourceLocation)
        clock.advance(by: .seconds(200))
        server.localStore.sweep()
        #expect(try await client.call(.get, "/status/\(id)").status == 404, sourceLocation: sourceLocation)
    }

    @Test("policy.ttl: a job past its TTL is gone (404)")
    func ttl() async throws {
        let clock = TestClock()
        try await withServer(clock: clock) { client, local in
            let id = try #require(
                try await client.call(.post, "/run", json: ["input": ["sleep": 5], "policy": ["ttl": 3_600_000, "executionTimeout": 7_200_000]]).body?["id"]?.stringValue)
            try await expectKeptThenGone(id, client: client, server: local, clock: clock)
        }
    }

    @Test("finished results are kept for the retention period, then 404")
    func retention() async throws {
        let clock = TestClock()
        // Hours on the moved clock, so a slow machine's real seconds cannot tip the result.
        try await withServer(limits: { $0.retention = .seconds(3600) }, clock: clock) { client, local in
            let id = try #require(try await client.call(.post, "/run", json: ["input": 1]).body?["id"]?.stringValue)
            _ = try await client.waitForFinal(id)
            try await expectKeptThenGone(id, client: client, server: local, clock: clock)
        }
    }

    @Test("at most maxRetainedSyncResults /runsync results are kept; /run results are counted apart")
    func retentionCaps() async throws {
        try await withServer(limits: { $0.maxRetainedSyncResults = 3 }) { client, local in
            let queued = try #require(try await client.call(.post, "/run", json: ["input": "kept"]).body?["id"]?.stringValue)
            _ = try await client.waitForFinal(queued)
            var ids: [String] = []
            for index in 0..<5 {
                let body = try await client.call(.post, "/runsync", json: ["input": .integer(Int64(index))]).body
                ids.append(try #require(body?["id"]?.stringValue))
            }
            local.localStore.sweep()
            var statuses: [Int] = []
            for id in ids { statuses.append(try await client.call(.get, "/status/\(id)").status) }
            #expect(statuses == [404, 404, 200, 200, 200])
            #expect(try await client.call(.get, "/status/\(queued)").status == 200)
        }
    }

    @Test("/retry queues a FAILED job again under its id; other states are refused")
    func retry() async throws {
        let attempts = Atomic<Int>(0)
        let handler = ClosureHandler { input, _ in
            if attempts.add(1, ordering: .relaxed).newValue == 1 { throw TestFailure(message: "first try fails") }
            return input
        }
        try await withServer(handler) { client, _ in
            let id = try #require(try await client.call(.post, "/run", json: ["input": "x"]).body?["id"]?.stringValue)
            #expect(try await client.waitForFinal(id)["status"] == "FAILED")
            let (status, body, _) = try await client.call(.post, "/retry/\(id)")
            #expect(status == 200)
            #expect(body == ["id": .string(id), "status": "IN_QUEUE"])
            let done = try await client.waitForFinal(id)
            #expect(done["status"] == "COMPLETED")
            #expect(done["error"] == nil)
            #expect(try await client.call(.post, "/retry/\(id)").status == 400)
            #expect(try await client.call(.get, "/health").body?["jobs"]?["retried"] == 1)
        }
    }

    @Test("/purge-queue removes queued jobs only; /health counts jobs and workers")
    func purgeAndHealth() async throws {
        let (handler, gate) = gatedEcho(blocking: "blocker")
        try await withServer(handler) { client, _ in
            let running = try #require(try await client.call(.post, "/run", json: ["input": "blocker"]).body?["id"]?.stringValue)
            try await client.waitForStatus(running, "IN_PROGRESS")
            for index in 0..<3 { try await client.call(.post, "/run", json: ["input": .integer(Int64(index))]) }
            let health = try #require(try await client.call(.get, "/v2/ep/health").body)
            #expect(health["jobs"]?["inQueue"] == 3)
            #expect(health["jobs"]?["inProgress"] == 1)
            #expect(health["workers"]?["running"] == 1)
            let (_, purged, _) = try await client.call(.post, "/purge-queue")
            #expect(purged == ["removed": 3, "status": "completed"])
            gate.open()
            #expect(try await client.waitForFinal(running)["status"] == "COMPLETED")
            let after = try #require(try await client.call(.get, "/health").body)
            #expect(after["jobs"]?["inQueue"] == 0)
            #expect(after["jobs"]?["completed"] == 1)
            #expect(after["workers"]?["idle"] == 1)
        }
    }

    @Test("/runsync?wait returns the id and status of a job that is still running")
    func runsyncWait() async throws {
        try await withServer { client, _ in
            // A wide margin between the wait and the job: this pass runs on a busy machine.
            let (_, body, _) = try await client.call(.post, "/runsync?wait=1000", json: ["input": ["sleep": 6]])
            #expect(body?["status"] == "IN_PROGRESS")
            let id = try #require(body?["id"]?.stringValue)
            #expect(try await client.waitForFinal(id)["status"] == "COMPLETED")
            #expect(try await client.call(.post, "/runsync?wait=soon", json: ["input": 1]).status == 400)
        }
    }

    @Test(
        "bad requests get a 400 that says what is wrong",
        arguments: [
            ("{not json", "not valid JSON"), ("[1]", "must be a JSON object"), (#"{"inputs": 1}"#, "no \"input\" key"),
            (#"{"input": 1, "policy": {"executionTimeout": -5}}"#, "policy.executionTimeout"),
            (#"{"input": 1, "policy": {"ttl": "long"}}"#, "policy.ttl"), (#"{"input": 1, "policy": 3}"#, "\"policy\" must be"),
            (#"{"input": 1, "webhook": "ftp://x"}"#, "webhook"), ("", "not valid JSON"),
        ])
    func badRequests(raw: String, message: String) async throws {
        try await withServer { client, _ in
            for route in ["/run", "/runsync"] {
                let (status, body, _) = try await client.call(.post, route, raw: raw)
                #expect(status == 400)
                #expect(body?["error"]?.stringValue?.contains(message) == true, "\(String(describing: body))")
            }
        }
    }

    @Test("bodies over 10 MB (/run) and 20 MB (/runsync) are refused with 413")
    func bodyLimits() async throws {
        try await withServer { client, _ in
            let eleven = #"{"input":""# + String(repeating: "a", count: 11 * 1024 * 1024) + #""}"#
            let (runStatus, runBody, _) = try await client.call(.post, "/run", raw: eleven)
            #expect(runStatus == 413)
            #expect(runBody?["error"]?.stringValue?.contains("limit") == true)
            // 11 MB is fine for /runsync (its result is then over 10 MB: an error result, not a crash).
            let (syncStatus, syncBody, _) = try await client.call(.post, "/runsync", raw: eleven)
            #expect(syncStatus == 200)
            #expect(syncBody?["status"] == "FAILED")
            let twentyOne = #"{"input":""# + String(repeating: "a", count: 21 * 1024 * 1024) + #""}"#
            #expect(try await client.call(.post, "/runsync", raw: twentyOne).status == 413)
        }
    }

    @Test("with an API key: Bearer or bare key accepted, anything else 401; the health check is open")
    func auth() async throws {
        let server = ServerConfiguration(apiKey: "s3cret")
        try await withServer(server: server) { client, _ in
            let r1 = try await client.call(.post, "/runsync", json: ["input": 1])
            #expect(r1.status == 401)
            let r2 = try await client.call(.post, "/runsync", json: ["input": 1], headers: [.authorization: "Bearer wrong"])
            #expect(r2.status == 401)
            let r3 = try await client.call(.post, "/runsync", json: ["input": 1], headers: [.authorization: "s3cre"])
            #expect(r3.status == 401)
            let r4 = try await client.call(.post, "/runsync", json: ["input": 1], headers: [.authorization: "Bearer s3cret"])
            #expect(r4.status == 200)
            let r5 = try await client.call(.get, "/v2/x/health", headers: [.authorization: "s3cret"])
            #expect(r5.status == 200)
            let r6 = try await client.call(.get, "/health")
            #expect(r6.status == 401)
            let r7 = try await client.call(.get, "/ping")
            #expect(r7.status == 200)
            // The scheme in any case and one or more spaces (RFC 9110); two headers are refused,
            // whichever holds the key.
            for value in ["bearer s3cret", "BEARER   s3cret"] {
                #expect(try await client.call(.post, "/runsync", json: ["input": 1], headers: [.authorization: value]).status == 200, "\(value)")
            }
            var two = HTTPFields()
            two.append(HTTPField(name: .authorization, value: "Bearer s3cret"))
            two.append(HTTPField(name: .authorization, value: "Bearer wrong"))
            #expect(try await client.call(.post, "/runsync", json: ["input": 1], headers: two).status == 401)
        }
        #expect(constantTimeEqual(Array("abc".utf8), Array("abc".utf8)))
        #expect(!constantTimeEqual(Array("abc".utf8), Array("abd".utf8)))
        #expect(!constantTimeEqual(Array("abc".utf8), Array("abcd".utf8)))
    }

    @Test("/ping: 204 while starting, 200 when ready, 503 when start-up failed or the handler is unhealthy")
    func ping() async throws {
        struct Sick: RawJobHandler {
            func handle(_ job: Job, output: JobOutputWriter, context: JobContext) async throws {}
            var isHealthy: Bool { false }
        }
        try await withServer(ready: false) { client, local in
            let r8 = try await client.call(.get, "/ping")
            #expect(r8.status == 204)
            let r9 = try await client.call(.post, "/runsync", json: ["input": 1])
            #expect(r9.status == 503)
            let r10 = try await client.call(.get, "/health")
            #expect(r10.body?["workers"]?["initializing"] == 1)
            local.health.set(.ready)
            let r11 = try await client.call(.get, "/ping")
            #expect(r11.status == 200)
            local.health.set(.failed("model missing"))
            let (status, body, _) = try await client.call(.get, "/ping")
            #expect(status == 503)
            #expect(body?["error"]?.stringValue?.contains("model missing") == true)
        }
        try await withServer(Sick()) { client, _ in
            let r12 = try await client.call(.get, "/ping")
            #expect(r12.status == 503)
        }
        var custom = ServerConfiguration()
        custom.healthPath = "/healthz"
        try await withServer(server: custom) { client, _ in
            let r13 = try await client.call(.get, "/healthz")
            #expect(r13.status == 200)
        }
    }

    @Test("every response carries X-Runpod-Worker-Id when RUNPOD_POD_ID is set")
    func workerIDHeader() async throws {
        try await withServer(environment: ["RUNPOD_POD_ID": "pod-7"]) { client, _ in
            let ok = try await client.call(.post, "/runsync", json: ["input": 1])
            #expect(ok.headers[HTTPField.Name("X-Runpod-Worker-Id")!] == "pod-7")
            #expect(ok.body?["workerId"] == "pod-7")
            let missing = try await client.call(.get, "/status/none")
            #expect(missing.status == 404)
            #expect(missing.headers[HTTPField.Name("X-Runpod-Worker-Id")!] == "pod-7")
            #expect(try await client.call(.get, "/ping").headers[HTTPField.Name("X-Runpod-Worker-Id")!] == "pod-7")
        }
    }

    @Test("/metrics: jobs by status, durations, queue depth, in progress (Prometheus text)")
    func metrics() async throws {
        try await withServer { client, _ in
            try await client.call(.post, "/runsync", json: ["input": 1])
            try await client.call(.post, "/runsync", json: ["input": ["fail": "x"]])
            let text = try await client.execute(uri: "/metrics", method: .get) { String(buffer: $0.body) }
            #expect(text.contains(#"worker_jobs_total{status="COMPLETED"} 1"#))
            #expect(text.contains(#"worker_jobs_total{status="FAILED"} 1"#))
            #expect(text.contains("worker_job_duration_seconds_count 2"))
            #expect(text.contains("worker_queue_depth 0"))
            #expect(text.contains("worker_jobs_in_progress 0"))
        }
    }

    @Test("/metrics: the queue depth follows jobs queued, started and purged (set only when it changes)")
    func queueDepthGauge() async throws {
        let (handler, gate) = gatedEcho(blocking: "blocker")
        try await withServer(handler) { client, _ in
            func depth() async throws -> Double? {
                let text = try await client.execute(uri: "/metrics", method: .get) { String(buffer: $0.body) }
                return text.split(separator: "\n").first { $0.hasPrefix("worker_queue_depth ") }.flatMap { Double($0.dropFirst(19)) }
            }
            let running = try #require(try await client.call(.post, "/run", json: ["input": "blocker"]).body?["id"]?.stringValue)
            try await client.waitForStatus(running, "IN_PROGRESS")
            for index in 0..<2 { try await client.call(.post, "/run", json: ["input": .integer(Int64(index))]) }
            #expect(try await depth() == 2)
            try await client.call(.post, "/purge-queue")
            #expect(try await depth() == 0)
            // The same depth as before the purge: still set (the purge's 0 was recorded as set).
            var queued: [String] = []
            for index in 0..<2 {
                queued.append(try #require(try await client.call(.post, "/run", json: ["input": .integer(Int64(index))]).body?["id"]?.stringValue))
            }
            #expect(try await depth() == 2)
            gate.open()
            for id in [running] + queued { #expect(try await client.waitForFinal(id)["status"] == "COMPLETED") }
            #expect(try await depth() == 0)
        }
    }

    @Test("/run answers IN_QUEUE even when a free slot started the job at once; HEAD /health; escaped ids are decoded")
    func smallRules() async throws {
        try await withServer { client, _ in
            let (_, body, _) = try await client.call(.post, "/run", json: ["input": ["sleep": 0.2]])
            #expect(body?["status"] == "IN_QUEUE")
            let id = try #require(body?["id"]?.stringValue)
            let escaped = id.replacingOccurrences(of: "-", with: "%2D")
            #expect(try await client.call(.get, "/status/\(escaped)").status == 200)
            #expect(try await client.call(.get, "/status/bad%ZZescape").status == 404)
            #expect(try await client.call(.head, "/health").status == 200)
            _ = try await client.waitForFinal(id)
        }
    }
}

import Logging
import Synchronization
import Testing
import TestSupport
import WorkerJSON
@testable import WorkerRuntime
import WorkerRuntimeTesting


/// The real libcurl platform client and loop against a mock platform that records requests.
@Suite("Worker API on the wire", .defaultPass)
struct RunPodWireTests {
    /// Runs the queue worker (loop + heartbeat) against `platform` while `body` runs.
    func withWorker(
        _ platform: MockPlatform, handler: some RawJobHandler, options: WorkerOptions = WorkerOptions(),
        environment extra: [String: String] = [:], timings: WorkerTimings = fastTimings(),
        _ body: @escaping @Sendable (WorkerLoop) async throws -> Void
    ) async throws {
        var env = platform.environment()
        env.merge(extra) { _, new in new }
        var configured = try testConfiguration(environment: env)
        configured.timings = timings
        let config = configured
        let source = RunPodJobSource(configuration: config, platform: config.platform!, client: testHTTPClient)
        try await withLoop(source: source, handler: handler, options: options, configuration: config) { loop in
            let heartbeat = config.heartbeatEnabled ? HeartbeatHandle(config: config, loop: loop) : nil
            defer { heartbeat?.stop() }
            try await body(loop)
        }
    }

    @Test("job-take and job-done: URLs, raw Authorization, content type, X-Request-ID (checklist 5, 7, 12)")
    func takeAndDone() async throws {
        try await MockPlatform().run { platform in
            platform.enqueue(["id": "j-1", "input": ["a": 1]])
            try await withWorker(platform, handler: ClosureHandler { input, _ in input }) { _ in
                try await platform.waitFor("job-done") { $0.contains { $0.operation == "job-done" } }
            }
            let take = try #require(platform.requests("job-take").first)
            #expect(take.method == "GET")
            #expect(take.target == "/v2/ep1/job-take/w42?gpu=NVIDIA+H100&job_in_progress=0")
            #expect(take.header("Authorization") == "test-key")
            let done = try #require(platform.requests("job-done").first)
            #expect(done.method == "POST")
            #expect(done.target == "/v2/ep1/job-done/w42/j-1?gpu=NVIDIA+H100&isStream=false")
            #expect(done.header("Authorization") == "test-key")
            #expect(done.header("Content-Type") == "application/x-www-form-urlencoded")
            #expect(done.header("X-Request-ID") == "j-1")
            #expect(done.json == ["output": ["a": 1]])
            // X-Request-ID belongs to result posts only; it does not leak into later takes.
            #expect(platform.requests("job-take").allSatisfy { $0.header("X-Request-ID") == nil })
        }
    }

    @Test("a batch is requested from job-take-batch and every job in the array runs (checklist 6, 10)")
    func batchOnTheWire() async throws {
        try await MockPlatform().run { platform in
            platform.enqueue(["id": "b-0", "input": 0], ["id": "b-1", "input": 1], ["id": "b-2", "input": 2])
            try await withWorker(platform, handler: ClosureHandler { input, _ in input }, options: .init(concurrency: .fixed(3))) { _ in
                try await platform.waitFor("three results") { $0.filter { $0.operation == "job-done" }.count == 3 }
            }
            let batch = try #require(platform.requests("job-take-batch").first)
            #expect(batch.target == "/v2/ep1/job-take-batch/w42?gpu=NVIDIA+H100&batch_size=3&job_in_progress=0")
            #expect(Set(platform.requests("job-done").compactMap { $0.json?["output"] }) == [0, 1, 2])
        }
    }

    @Test("204 and 400 retry at once; 429 waits; 500 and garbage back off and the worker goes on (checklist 8, 9)")
    func takeAnswers() async throws {
        try await MockPlatform(longPoll: .milliseconds(20)).run { platform in
            platform.answerTakes(
                .init(status: 204), .init(status: 400, body: "flashboot"), .init(status: 500, body: "oops"),
                .init(status: 200, body: "not json", contentType: "text/plain"),
                .init(status: 200, body: #"{"input":{}}"#), .init(status: 200, body: #"{"id":7,"input":{}}"#),
                .init(status: 429))
            platform.enqueue(["id": "good", "input": "ok"])
            // A long backoff, so "at once" and "backed off" stay far apart however loaded the machine is.
            var timings = fastTimings()
            timings.backoffBase = .seconds(5)
            timings.backoffCap = .seconds(5)
            try await withWorker(platform, handler: ClosureHandler { input, _ in input }, timings: timings) { _ in
                try await platform.waitFor("the good job's result", timeout: .seconds(20)) {
                    $0.contains { $0.operation == "job-done" }
                }
            }
            let takes = platform.requests("job-take")
            #expect(takes.count >= 8)
            // 204 and 400 are retried at once, without a backoff (a loaded machine may stall a
            // second; a backoff is never under 2.5 s).
            #expect(takes[1].at - takes[0].at < .milliseconds(2400))
            #expect(takes[2].at - takes[1].at < .milliseconds(2400))
            // The 500 and the unreadable body back off (at least half of 5 s).
            #expect(takes[3].at - takes[2].at >= .milliseconds(2490))
            #expect(takes[4].at - takes[3].at >= .milliseconds(2490))
            // The 429 (7th take) is followed by a wait of tooManyRequestsDelay (300 ms in tests).
            #expect(takes[7].at - takes[6].at >= .milliseconds(290))
            #expect(platform.requests("job-done").first?.json == ["output": "ok"])
        }
    }

    @Test("stream chunks are posted in order to job-stream, then the final job-done with isStream=true (checklist 19, 20)")
    func streamOnTheWire() async throws {
        try await MockPlatform().run { platform in
            platform.enqueue(["id": "g-1", "input": 3])
            let handler = StreamingClosureHandler { input, _, stream in
                for index in 0..<input.intValue! { try await stream.yield(["tok": .integer(Int64(index))]) }
            }
            try await withWorker(platform, handler: handler, options: .init(returnAggregateStream: true)) { _ in
                try await platform.waitFor("job-done") { $0.contains { $0.operation == "job-done" } }
            }
            let posts = platform.requests.filter { $0.method == "POST" }
            #expect(posts.map(\.target) == [
                "/v2/ep1/job-stream/w42/g-1?gpu=NVIDIA+H100&isStream=false",
                "/v2/ep1/job-stream/w42/g-1?gpu=NVIDIA+H100&isStream=false",
                "/v2/ep1/job-stream/w42/g-1?gpu=NVIDIA+H100&isStream=false",
                "/v2/ep1/job-done/w42/g-1?gpu=NVIDIA+H100&isStream=true",
            ])
            #expect(posts.map(\.json) == [
                ["output": ["tok": 0]], ["output": ["tok": 1]], ["output": ["tok": 2]],
                ["output": [["tok": 0], ["tok": 1], ["tok": 2]]],
            ])
        }
    }

    @Test("job-done is retried on 5xx (3 attempts), not on 4xx; a refused result is replaced by an error (checklist 18)")
    func doneRetries() async throws {
        try await MockPlatform().run { platform in
            platform.answerDones(.init(status: 503), .init(status: 502))
            platform.enqueue(["id": "r", "input": 1])
            try await withWorker(platform, handler: ClosureHandler { input, _ in input }) { _ in
                try await platform.waitFor("three posts") { $0.filter { $0.operation == "job-done" }.count == 3 }
            }
            #expect(platform.completedCount == 1)
        }
        try await MockPlatform().run { platform in
            platform.answerDones(.init(status: 400, body: "Bad Request"))
            platform.enqueue(["id": "r", "input": 1])
            try await withWorker(platform, handler: ClosureHandler { input, _ in input }) { _ in
                try await platform.waitFor("two posts") { $0.filter { $0.operation == "job-done" }.count == 2 }
            }
            let posts = platform.requests("job-done")
            #expect(posts[0].json == ["output": 1])
            #expect(posts[1].json?["error"]?.stringValue?.contains("HTTP 400") == true)
        }
    }

    @Test("job-done answering 429 with Retry-After, 5xx, and hanging past the post timeout: every result arrives, no slot is held")
    func doneTrouble() async throws {
        try await MockPlatform().run { platform in
            platform.answerDones(
                .init(status: 429, headers: [("Retry-After", "1")]), .init(status: 500), .init(status: 503),
                .init(status: 200, delay: .seconds(30)))
            platform.enqueue(["id": "first", "input": 1], ["id": "second", "input": 2])
            var timings = fastTimings()
            timings.postTimeout = .milliseconds(400)
            let started = ContinuousClock.now
            try await withWorker(platform, handler: ClosureHandler { input, _ in input }, timings: timings) { _ in
                try await platform.waitFor("both results", timeout: .seconds(20)) { _ in platform.completedCount == 2 }
            }
            // The Retry-After second was waited; the hanging post cost its timeout, not the result.
            #expect(ContinuousClock.now - started >= .seconds(1))
            let posts = platform.requests("job-done")
            #expect(posts.count == 6)
            #expect(Set(posts.map { $0.json }) == [["output": 1], ["output": 2]])
            // One slot: "second" was taken while "first" was still being retried.
            let takes = platform.requests.filter { $0.operation == "job-take" && $0.query.contains("job_in_progress") }
            let lastFirst = posts.last { $0.path.hasSuffix("/first") }!
            #expect(takes.contains { $0.at < lastFirst.at && $0.at > posts[0].at }, "the next job was taken while a result was retried")
        }
    }

    @Test("a job id with CR, LF or CRLF: its result is delivered to the escaped path, and no header is injected")
    func controlBytesInIDs() async throws {
        try await MockPlatform().run { platform in
            let ids = ["crlf\r\nX-Injected: yes", "lone\rcr", "lone\nlf", "caf\u{E9} ok"]
            for id in ids { platform.enqueue(["id": .string(id), "input": 1]) }
            try await withWorker(platform, handler: ClosureHandler { input, _ in input }) { _ in
                try await platform.waitFor("four results") { _ in platform.completedCount == 4 }
            }
            let posts = platform.requests("job-done")
            #expect(posts.allSatisfy { $0.header("X-Injected") == nil && $0.header("X-Request-ID") == nil })
            #expect(Set(posts.map { $0.path.split(separator: "/").last.map(String.init) ?? "" }) == [
                "crlf%0D%0AX-Injected:%20yes", "lone%0Dcr", "lone%0Alf", "caf%C3%A9%20ok",
            ])
        }
    }

    @Test("a network error on job-done is reported as retryable")
    func networkFailureIsRetryable() async throws {
        var env = MockPlatform().environment()
        env["RUNPOD_WEBHOOK_POST_OUTPUT"] = "http://127.0.0.1:1/v2/ep1/job-done/$RUNPOD_POD_ID/$ID"
        env["RUNPOD_WEBHOOK_GET_JOB"] = "http://127.0.0.1:1/v2/ep1/job-take/$ID"
        let config = try testConfiguration(environment: env)
        let source = RunPodJobSource(configuration: config, platform: config.platform!, client: testHTTPClient)
        guard case .failed(let reason) = await source.postResult(try ResultPayload([:]), jobID: "j", isStream: false) else {
            Issue.record("a refused connection was not retryable")
            return
        }
        #expect(reason.contains("127.0.0.1:1"))
        guard case .failed = await source.takeJobs(count: 1, jobInProgress: false) else {
            Issue.record("a refused job-take was not a failure")
            return
        }
    }

    @Test("the heartbeat pings with in-progress ids and runpod_version (checklist 24)")
    func heartbeat() async throws {
        try await MockPlatform().run { platform in
            platform.enqueue(["id": "slow-1", "input": 1])
            let handler = ClosureHandler { input, _ in
                try await Task.sleep(for: .milliseconds(600))
                return input
            }
            try await withWorker(platform, handler: handler, environment: ["RUNPOD_PING_INTERVAL": "100"]) { _ in
                try await platform.waitFor("job-done") { $0.contains { $0.operation == "job-done" } }
                let pingsBefore = platform.requests("ping").count
                try await platform.waitFor("an idle ping") { $0.filter { $0.operation == "ping" }.count > pingsBefore + 1 }
            }
            let pings = platform.requests("ping")
            #expect(pings.contains { $0.target == "/v2/ep1/ping/w42?gpu=NVIDIA+H100&job_id=slow-1&runpod_version=1.12.0" })
            #expect(pings.last?.target == "/v2/ep1/ping/w42?gpu=NVIDIA+H100&runpod_version=1.12.0")
            #expect(pings.allSatisfy { $0.header("Authorization") == "test-key" })
            // About every 100 ms while the job ran for 600 ms.
            #expect(pings.filter { $0.query.contains("job_id=slow-1") }.count >= 3)
        }
    }

    @Test("no ping without a key or a pod id (checklist 26)")
    func noPingWithoutKey() async throws {
        try await MockPlatform().run { platform in
            platform.enqueue(["id": "j", "input": 1])
            try await withWorker(platform, handler: ClosureHandler { input, _ in input },
                                 environment: ["RUNPOD_AI_API_KEY": "", "RUNPOD_PING_INTERVAL": "50"]) { _ in
                try await platform.waitFor("job-done") { $0.contains { $0.operation == "job-done" } }
                try await Task.sleep(for: .milliseconds(200))
            }
            #expect(platform.requests("ping").isEmpty)
        }
    }

    @Test("the stop channel: URL, one job cancelled, nothing posted for it, sibling completes (checklist 27)")
    func stopOnTheWire() async throws {
        try await MockPlatform().run { platform in
            platform.enqueue(["id": "victim", "input": 30_000], ["id": "sibling", "input": 0])
            let gate = AsyncSignalBox()
            let handler = ClosureHandler { input, _ in
                if input == 0 { await gate.wait() }
                try await Task.sleep(for: .milliseconds(input.intValue!))
                return input
            }
            try await withWorker(platform, handler: handler, options: .init(concurrency: .fixed(2))) { loop in
                try await waitUntil { loop.jobsInProgress.count == 2 }
                platform.answerStops(.init(status: 200, body: #"{"jobsToStop":["victim"]}"#))
                try await waitUntil { loop.jobsInProgress == ["sibling"] }
                gate.open()
                try await platform.waitFor("sibling result") { $0.contains { $0.operation == "job-done" } }
            }
            #expect(platform.requests("job-done").map(\.path) == ["/v2/ep1/job-done/w42/sibling"])
            let stop = try #require(platform.requests("job-stop").first)
            #expect(stop.target == "/v2/ep1/job-stop/w42?gpu=NVIDIA+H100")
            #expect(stop.header("Authorization") == "test-key")
        }
    }

    @Test("an empty answer from job-stop is followed by a wait before the next poll (checklist 28)")
    func stopPollWaits() async throws {
        try await MockPlatform(longPoll: .milliseconds(1)).run { platform in
            platform.answerStops(.init(status: 204), .init(status: 200, body: #"{"jobsToStop":[]}"#), .init(status: 204))
            try await withWorker(platform, handler: ClosureHandler { input, _ in input }) { _ in
                try await platform.waitFor("three stop polls") { $0.filter { $0.operation == "job-stop" }.count >= 3 }
            }
            let polls = platform.requests("job-stop")
            // stopPollDelay is 50 ms in tests (1 s in production).
            #expect(polls[1].at - polls[0].at >= .milliseconds(45))
            #expect(polls[2].at - polls[1].at >= .milliseconds(45))
        }
    }
}

/// Starts the production heartbeat for a test worker.
struct HeartbeatHandle {
    private let stopAction: @Sendable () -> Void
    init(config: WorkerConfiguration, loop: WorkerLoop) {
        stopAction = Heartbeat.start(configuration: config, client: testHTTPClient, logger: Logger(label: "test")) {
            loop.jobsInProgress
        }
    }
    func stop() { stopAction() }
}

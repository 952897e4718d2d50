#if canImport(Glibc)
import Glibc
#endif
import NIOCore
import Synchronization
import WorkerJSON
import WorkerRuntime

/// RunPod's worker API on a loopback port: hands out queued jobs (long-polling briefly when
/// there are none), answers with scripted statuses, and records every request it receives.
/// Served straight from swift-nio's event loop (`MockPlatformServer`): no hop into the
/// concurrency pool per request, so the mock is not what limits a benchmark.
public final class MockPlatform: Sendable {
    public struct Request: Sendable {
        public let method: String
        public let path: String
        public let query: String
        public let headers: [(name: String, value: String)]
        public let body: [UInt8]
        public let at: ContinuousClock.Instant
        /// Wall-clock time of arrival, comparable across processes (benchmarks).
        public let epochNanos: Int64

        public func header(_ name: String) -> String? {
            headers.first { $0.name.lowercased() == name.lowercased() }?.value
        }
        public var json: JSONValue? { try? JSONValue.parse(body) }
        /// The path with its query, as the worker asked for it.
        public var target: String { query.isEmpty ? path : "\(path)?\(query)" }
        /// `job-take`, `job-take-batch`, `job-done`, `job-stream`, `job-stop` or `ping`.
        public var operation: String {
            let parts = path.split(separator: "/")
            return parts.count > 2 ? String(parts[2]) : path
        }
    }

    public struct Answer: Sendable {
        public var status: Int
        public var body: [UInt8]
        public var contentType: String
        public var headers: [(name: String, value: String)]
        /// Answer only after this long (a platform that hangs); the worker's own timeout may come first.
        public var delay: Duration?
        public init(
            status: Int, body: String = "", contentType: String = "application/json", headers: [(name: String, value: String)] = [],
            delay: Duration? = nil
        ) {
            self.status = status
            self.body = Array(body.utf8)
            self.contentType = contentType
            self.headers = headers
            self.delay = delay
        }
    }

    struct State {
        var requests: [Request] = []
        var jobs: [JSONValue] = []
        var takeAnswers: [Answer] = []
        var doneAnswers: [Answer] = []
        var stopAnswers: [Answer] = []
        var generatedJobs: JSONValue?
        var generatedCount = 0
        var completed = 0
        var firstTakeEpochNanos: Int64?
        /// Benchmarks turn recording off: millions of requests would only grow memory.
        var recording = true
        var unrecorded = 0
    }

    let state = Mutex(State())
    /// How long an empty job-take is held open before answering 204.
    public let longPoll: Duration
    private let portBox = Mutex<Int?>(nil)

    public init(longPoll: Duration = .milliseconds(100)) {
        self.longPoll = longPoll
    }

    public var port: Int { portBox.withLock { $0 } ?? 0 }
    public var baseURL: String { "http://127.0.0.1:\(port)" }

    /// The environment a worker needs to use this platform as endpoint `ep1`.
    public func environment(workerID: String = "w42", apiKey: String = "test-key", query: String = "?gpu=NVIDIA+H100")
        -> [String: String]
    {
        [
            "RUNPOD_WEBHOOK_GET_JOB": "\(baseURL)/v2/ep1/job-take/$ID\(query)",
            "RUNPOD_WEBHOOK_POST_OUTPUT": "\(baseURL)/v2/ep1/job-done/$RUNPOD_POD_ID/$ID\(query)",
            "RUNPOD_WEBHOOK_POST_STREAM": "\(baseURL)/v2/ep1/job-stream/$RUNPOD_POD_ID/$ID\(query)",
            "RUNPOD_WEBHOOK_PING": "\(baseURL)/v2/ep1/ping/$RUNPOD_POD_ID\(query)",
            "RUNPOD_POD_ID": workerID,
            "RUNPOD_AI_API_KEY": apiKey,
        ]
    }

    // MARK: Scripting

    public func enqueue(_ jobs: JSONValue...) { state.withLock { $0.jobs.append(contentsOf: jobs) } }
    public func answerTakes(_ answers: Answer...) { state.withLock { $0.takeAnswers.append(contentsOf: answers) } }
    public func answerDones(_ answers: Answer...) { state.withLock { $0.doneAnswers.append(contentsOf: answers) } }
    public func answerStops(_ answers: Answer...) { state.withLock { $0.stopAnswers.append(contentsOf: answers) } }

    /// Every job-take gets fresh jobs with this input, for ever (benchmarks).
    public func generateJobs(input: JSONValue) { state.withLock { $0.generatedJobs = input } }

    /// Stops keeping every request (benchmarks); counts and the first job-take are still kept.
    public func stopRecording() { state.withLock { $0.recording = false } }

    // MARK: What the worker sent

    public var requests: [Request] { state.withLock { $0.requests } }
    public func requests(_ operation: String) -> [Request] { requests.filter { $0.operation == operation } }
    public var completedCount: Int { state.withLock { $0.completed } }

    /// Waits until `predicate` holds for the recorded requests, or fails after `timeout`.
    @discardableResult
    public func waitFor(
        _ what: String, timeout: Duration = .seconds(10), _ predicate: @escaping ([Request]) -> Bool
    ) async throws -> [Request] {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let requests = self.requests
            if predicate(requests) { return requests }
            try await Task.sleep(for: .milliseconds(5))
        }
        throw TimeoutError(what: what, timeout: timeout)
    }

    // MARK: Serving

    /// Runs the platform on 127.0.0.1 with a free port for the duration of `body`.
    public func run<T: Sendable>(_ body: @Sendable (MockPlatform) async throws -> T) async throws -> T {
        let channel = try await start(host: "127.0.0.1", port: 0)
        do {
            let result = try await body(self)
            try? await channel.close()
            return result
        } catch {
            try? await channel.close()
            throw error
        }
    }

    /// Starts serving and returns the listening channel (close it to stop).
    public func start(host: String, port: Int) async throws -> any Channel {
        let channel = try await MockPlatformServer.bind(platform: self, host: host, port: port)
        portBox.withLock { $0 = channel.localAddress?.port }
        return channel
    }

    /// Answers one request. Returns nil when a job-take should be held open and asked again.
    func answer(_ request: Request, firstAttempt: Bool) -> Answer? {
        let parts = request.path.split(separator: "/")
        if request.path.hasPrefix("/_") { return control(request) }
        guard parts.count >= 4, parts[0] == "v2" else { return Answer(status: 404, body: #"{"error":"not found"}"#) }
        switch (request.method, String(parts[2])) {
        case ("GET", "job-take"), ("GET", "job-take-batch"):
            let batch = parts[2] == "job-take-batch"
            let batchSize = batch ? Self.queryValue("batch_size", in: request.query).flatMap(Int.init) ?? 1 : 1
            return decide(request, record: firstAttempt) { state -> Answer? in
                if !state.takeAnswers.isEmpty { return state.takeAnswers.removeFirst() }
                var jobs: [JSONValue] = []
                if let input = state.generatedJobs {
                    for _ in 0..<batchSize {
                        state.generatedCount += 1
                        jobs.append(["id": .string("job-\(state.generatedCount)"), "input": input])
                    }
                } else {
                    jobs = Array(state.jobs.prefix(batchSize))
                    state.jobs.removeFirst(jobs.count)
                }
                guard !jobs.isEmpty else { return nil }
                let body = batch ? JSONValue.array(jobs) : jobs[0]
                return Answer(status: 200, body: (try? body.jsonString()) ?? "")
            }
        case ("POST", "job-done"):
            return decide(request, record: true) { state in
                if state.doneAnswers.isEmpty {
                    state.completed += 1
                    return Answer(status: 200, body: "{}")
                }
                return state.doneAnswers.removeFirst()
            }
        case ("POST", "job-stream"), ("GET", "ping"):
            return decide(request, record: true) { _ in Answer(status: 200, body: "{}") }
        case ("GET", "job-stop"):
            return decide(request, record: true) { state in
                state.stopAnswers.isEmpty ? Answer(status: 204) : state.stopAnswers.removeFirst()
            }
        default:
            return Answer(status: 404, body: #"{"error":"not found"}"#)
        }
    }

    /// Control routes, for tests and benchmarks driving a platform in another process.
    private func control(_ request: Request) -> Answer {
        switch (request.method, request.path) {
        case ("GET", "/_stats"):
            let stats: JSONValue = state.withLock { state in
                [
                    "completed": .integer(Int64(state.completed)), "requests": .integer(Int64(state.requests.count)),
                    "first_take_epoch_ns": state.firstTakeEpochNanos.map { .integer($0) } ?? .null,
                ]
            }
            return Answer(status: 200, body: (try? stats.jsonString()) ?? "{}")
        case ("GET", "/_requests"):
            let list = JSONValue.array(requests.map { request in
                [
                    "method": .string(request.method), "operation": .string(request.operation),
                    "target": .string(request.target), "epoch_ns": .integer(request.epochNanos),
                    "body": .string(String(decoding: request.body, as: UTF8.self)),
                ]
            })
            return Answer(status: 200, body: (try? list.jsonString()) ?? "[]")
        case ("POST", "/_enqueue"):
            guard case .array(let jobs)? = try? JSONValue.parse(request.body) else {
                return Answer(status: 400, body: #"{"error":"expected a JSON array of jobs"}"#)
            }
            state.withLock { $0.jobs.append(contentsOf: jobs) }
            return Answer(status: 200, body: "{}")
        default:
            return Answer(status: 404, body: #"{"error":"not found"}"#)
        }
    }

    private func decide<A>(_ recorded: Request, record: Bool, _ decide: (inout State) -> A) -> A {
        state.withLock { state in
            if record {
                if recorded.operation.hasPrefix("job-take"), state.firstTakeEpochNanos == nil {
                    state.firstTakeEpochNanos = recorded.epochNanos
                }
                if state.recording { state.requests.append(recorded) } else { state.unrecorded += 1 }
            }
            return decide(&state)
        }
    }

    static func epochNanosNow() -> Int64 {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return Int64(spec.tv_sec) * 1_000_000_000 + Int64(spec.tv_nsec)
    }

    static func queryValue(_ name: String, in query: String) -> String? {
        for pair in query.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1)
            if parts.first == Substring(name) { return parts.count > 1 ? String(parts[1]) : "" }
        }
        return nil
    }
}

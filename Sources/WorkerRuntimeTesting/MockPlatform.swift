#if canImport(Glibc)
import Glibc
#endif
import Hummingbird
import Logging
import NIOCore
import Synchronization
import WorkerRuntime

/// RunPod's worker API on a loopback port: hands out queued jobs (long-polling briefly when
/// there are none), answers with scripted statuses, and records every request it receives.
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
        public init(status: Int, body: String = "", contentType: String = "application/json") {
            self.status = status
            self.body = Array(body.utf8)
            self.contentType = contentType
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
        let app = makeApplication(host: "127.0.0.1", port: 0)
        return try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask {
                try await app.run()
                return nil
            }
            while port == 0 { try await Task.sleep(for: .milliseconds(2)) }
            let result = try await body(self)
            group.cancelAll()
            return result
        }
    }

    public func makeApplication(host: String, port: Int) -> some ApplicationProtocol {
        let router = Router()
        router.get("/v2/:endpoint/job-take/:worker") { request, _ in await self.take(request, batch: false) }
        router.get("/v2/:endpoint/job-take-batch/:worker") { request, _ in await self.take(request, batch: true) }
        router.post("/v2/:endpoint/job-done/:worker/:job") { request, _ in
            let answer = await self.record(request) { state in
                if state.doneAnswers.isEmpty {
                    state.completed += 1
                    return Answer(status: 200, body: "{}")
                }
                return state.doneAnswers.removeFirst()
            }
            return Self.response(answer)
        }
        router.post("/v2/:endpoint/job-stream/:worker/:job") { request, _ in
            Self.response(await self.record(request) { _ in Answer(status: 200, body: "{}") })
        }
        router.get("/v2/:endpoint/job-stop/:worker") { request, _ in
            let answer = await self.record(request) { state in
                state.stopAnswers.isEmpty ? Answer(status: 204) : state.stopAnswers.removeFirst()
            }
            if answer.status == 204 { try? await Task.sleep(for: self.longPoll) }
            return Self.response(answer)
        }
        router.get("/v2/:endpoint/ping/:worker") { request, _ in
            Self.response(await self.record(request) { _ in Answer(status: 200, body: "{}") })
        }
        // Control routes, for tests and benchmarks driving a platform in another process.
        router.get("/_stats") { _, _ in
            let stats: JSONValue = self.state.withLock { state in
                [
                    "completed": .integer(Int64(state.completed)), "requests": .integer(Int64(state.requests.count)),
                    "first_take_epoch_ns": state.requests.first { $0.operation.hasPrefix("job-take") }
                        .map { .integer($0.epochNanos) } ?? .null,
                ]
            }
            return Self.response(Answer(status: 200, body: (try? stats.jsonString()) ?? "{}"))
        }
        router.get("/_requests") { _, _ in
            let list = JSONValue.array(self.requests.map { request in
                [
                    "method": .string(request.method), "operation": .string(request.operation),
                    "target": .string(request.target), "epoch_ns": .integer(request.epochNanos),
                    "body": .string(String(decoding: request.body, as: UTF8.self)),
                ]
            })
            return Self.response(Answer(status: 200, body: (try? list.jsonString()) ?? "[]"))
        }
        router.post("/_enqueue") { request, _ in
            var request = request
            let buffer = try await request.collectBody(upTo: 64 << 20)
            guard case .array(let jobs) = try JSONValue.parse(Array(buffer.readableBytesView)) else {
                return Self.response(Answer(status: 400, body: "{\"error\":\"expected a JSON array of jobs\"}"))
            }
            self.state.withLock { $0.jobs.append(contentsOf: jobs) }
            return Self.response(Answer(status: 200, body: "{}"))
        }
        var logger = Logger(label: "mock-platform")
        logger.logLevel = .critical
        return Application(
            router: router, configuration: .init(address: .hostname(host, port: port)),
            onServerRunning: { channel in self.portBox.withLock { $0 = channel.localAddress?.port } },
            logger: logger)
    }

    private func take(_ request: Hummingbird.Request, batch: Bool) async -> Response {
        let query = request.uri.query ?? ""
        let batchSize = batch ? Self.queryValue("batch_size", in: query).flatMap(Int.init) ?? 1 : 1
        let deadline = ContinuousClock.now + longPoll
        let snapshot = await Self.snapshot(request)
        var recorded = false
        while true {
            let answer = decide(snapshot, record: !recorded) { state -> Answer? in
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
            recorded = true
            if let answer { return Self.response(answer) }
            if ContinuousClock.now >= deadline { return Self.response(Answer(status: 204)) }
            try? await Task.sleep(for: .milliseconds(2))
        }
    }

    private func record<A>(_ request: Hummingbird.Request, _ decide: (inout State) -> A) async -> A {
        self.decide(await Self.snapshot(request), record: true, decide)
    }

    /// Reads the request once (a body can be read only once).
    private static func snapshot(_ request: Hummingbird.Request) async -> Request {
        var request = request
        let buffer = (try? await request.collectBody(upTo: 64 << 20)) ?? ByteBuffer()
        return Request(
            method: request.method.rawValue, path: request.uri.path, query: request.uri.query ?? "",
            headers: request.headers.map { ($0.name.rawName, $0.value) }, body: Array(buffer.readableBytesView),
            at: .now, epochNanos: Self.epochNanosNow())
    }

    private func decide<A>(_ recorded: Request, record: Bool, _ decide: (inout State) -> A) -> A {
        state.withLock { state in
            if record { state.requests.append(recorded) }
            return decide(&state)
        }
    }

    private static func response(_ answer: Answer) -> Response {
        var headers = HTTPFields()
        if answer.status != 204 { headers[.contentType] = answer.contentType }
        return Response(
            status: .init(code: answer.status), headers: headers,
            body: answer.status == 204 ? .init() : .init(byteBuffer: ByteBuffer(bytes: answer.body)))
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

/// A body to post, as a value and as the exact bytes that go on the wire.
public struct ResultPayload: Sendable {
    public let json: JSONValue
    public let bytes: [UInt8]

    public init(json: JSONValue, bytes: [UInt8]) {
        self.json = json
        self.bytes = bytes
    }

    public init(_ json: JSONValue) throws(JSONError) {
        self.init(json: json, bytes: try json.serialized())
    }
}

/// Where results go: the platform's job-done and job-stream (or the terminal, or the local
/// server's job store).
public protocol ResultSink: Sendable {
    /// job-done: a final result, or a progress update (`isStream` false).
    func postResult(_ body: ResultPayload, jobID: String, isStream: Bool) async -> DeliveryOutcome
    /// job-stream: one chunk, `{"output": chunk}`.
    func postChunk(_ body: ResultPayload, jobID: String) async -> DeliveryOutcome
}

/// The platform behind a protocol, so the loop runs against an in-memory source in tests.
public protocol JobSource: ResultSink {
    /// job-take (one job) or job-take-batch (`count` > 1). Returns when the platform answers;
    /// cancelling the calling task aborts the request.
    func takeJobs(count: Int, jobInProgress: Bool) async -> JobTakeOutcome
    /// One long poll of the stop channel; nil when the platform offers none.
    func pollStopRequests() async -> StopPollOutcome?
}

/// How many jobs a worker runs at once.
public enum JobConcurrency: Sendable {
    /// `WORKER_CONCURRENCY` (default 1).
    case environment
    case fixed(Int)
    /// Re-evaluated while polling, given the current value (runpod's `concurrency_modifier`).
    case dynamic(@Sendable (Int) -> Int)

    var isDynamic: Bool {
        if case .dynamic = self { return true }
        return false
    }

    func evaluate(current: Int, environment: Int) -> Int {
        switch self {
        case .environment: return max(1, environment)
        case .fixed(let count): return max(1, count)
        case .dynamic(let modifier): return max(1, modifier(current))
        }
    }
}

/// Per-handler runtime settings chosen in code.
public struct WorkerOptions: Sendable {
    public var concurrency: JobConcurrency
    /// Send all streamed chunks again, as a list, in the final result.
    public var returnAggregateStream: Bool
    /// Ask the platform for a fresh worker after every job, and exit once in-flight jobs finish.
    public var refreshWorker: Bool

    public init(
        concurrency: JobConcurrency = .environment, returnAggregateStream: Bool = false, refreshWorker: Bool = false
    ) {
        self.concurrency = concurrency
        self.returnAggregateStream = returnAggregateStream
        self.refreshWorker = refreshWorker
    }
}

/// Per-handler runtime settings chosen in code.
public struct WorkerOptions: Sendable {
    public var concurrency: JobConcurrency
    /// Send all streamed chunks again, as a list, in the final result.
    public var returnAggregateStream: Bool
    /// Ask the platform for a fresh worker after every job, and exit once in-flight jobs finish.
    public var refreshWorker: Bool
    /// The endpoint's execution timeout, for `JobContext.deadline` when a job carries no
    /// `policy.executionTimeout` of its own (queue workers are not told the endpoint's setting).
    public var executionTimeout: Duration?

    public init(
        concurrency: JobConcurrency = .environment, returnAggregateStream: Bool = false, refreshWorker: Bool = false,
        executionTimeout: Duration? = nil
    ) {
        self.concurrency = concurrency
        self.returnAggregateStream = returnAggregateStream
        self.refreshWorker = refreshWorker
        self.executionTimeout = executionTimeout
    }
}

/// How many jobs a worker runs at once.
public enum JobConcurrency: Sendable {
    /// `WORKER_CONCURRENCY` (default 1).
    case environment
    case fixed(Int)
    /// Re-evaluated while polling, given the current value (runpod's `concurrency_modifier`).
    case dynamic(@Sendable (Int) -> Int)

    package var isDynamic: Bool {
        if case .dynamic = self { return true }
        return false
    }

    package func evaluate(current: Int, environment: Int) -> Int {
        switch self {
        case .environment: return max(1, environment)
        case .fixed(let count): return max(1, count)
        case .dynamic(let modifier): return max(1, modifier(current))
        }
    }
}

import EndpointAPI

/// One job's state in the endpoint API's lifecycle, and the moves that concern that job alone. A
/// plain value (no references, clocks or locks), so `JobStateMachine` rules on it wherever it is
/// kept: the in-memory store keeps it in its `StoredJob`, a shared store would keep it in a record.
/// Each move is refused (returns false) from a phase where it makes no sense, which is how a late
/// result of a cancelled job, or a stale queue entry, comes to nothing.
struct JobLifecycle: Equatable, Sendable {
    enum Phase: Equatable, Sendable {
        /// Waiting for a free slot.
        case queued
        /// Taken by a runner.
        case running(startedAt: JobTime)
        /// The runner's result came: COMPLETED or FAILED.
        case finished(JobStatus, startedAt: JobTime, finishedAt: JobTime)
        /// Stopped by the API (/cancel, its execution timeout, shutdown) with the status it was
        /// given; whatever the handler still produces is dropped.
        case stopped(JobStatus, startedAt: JobTime?, finishedAt: JobTime)
        /// Deleted past its TTL while queued or running: gone (404), and never final.
        case expired(startedAt: JobTime?)
        /// Removed by /purge-queue before it started: gone (404).
        case purged
    }

    private(set) var phase = Phase.queued
    let createdAt: JobTime
    let ttl: Duration
    let executionTimeout: Duration
    /// A /runsync job: its result is kept in its own list, for the shorter retention.
    let isSync: Bool
    /// False for a job whose only reader is the listener that submitted it (an MCP tool call):
    /// its result is not kept once final, so it takes no retention budget.
    let retained: Bool
    /// What the request holds while queued and retained.
    let inputBytes: Int
    /// The result's size as JSON (with its chunks' when they became the output), once final.
    private(set) var resultBytes = 0
    private(set) var chunkBytes = 0
    private(set) var chunkCount = 0

    init(createdAt: JobTime, ttl: Duration, executionTimeout: Duration, isSync: Bool, retained: Bool = true, inputBytes: Int) {
        self.createdAt = createdAt
        self.ttl = ttl
        self.executionTimeout = executionTimeout
        self.isSync = isSync
        self.retained = retained
        self.inputBytes = inputBytes
    }

    /// The same job queued again (`/retry`): same limits and input, fresh state. Kept whether or
    /// not the first was: /retry has a reader of its own.
    init(requeueing job: JobLifecycle, at now: JobTime) {
        self.init(createdAt: now, ttl: job.ttl, executionTimeout: job.executionTimeout, isSync: job.isSync, inputBytes: job.inputBytes)
    }

    // MARK: What the API shows

    var status: JobStatus {
        switch phase {
        case .queued, .purged: .inQueue
        case .running: .inProgress
        case .finished(let status, _, _), .stopped(let status, _, _): status
        case .expired(let startedAt): startedAt == nil ? .inQueue : .inProgress
        }
    }

    var startedAt: JobTime? {
        switch phase {
        case .queued, .purged: nil
        case .running(let startedAt), .finished(_, let startedAt, _): startedAt
        case .stopped(_, let startedAt, _), .expired(let startedAt): startedAt
        }
    }

    var finishedAt: JobTime? {
        switch phase {
        case .finished(_, _, let finishedAt), .stopped(_, _, let finishedAt): finishedAt
        case .queued, .running, .expired, .purged: nil
        }
    }

    /// A report's `delayTime` and `executionTime` in milliseconds, and whether the job has
    /// started (only then does the report name the worker).
    func timings(now: JobTime) -> (delay: Int64, execution: Int64, started: Bool) {
        let startedAt = self.startedAt
        let finishedAt = self.finishedAt
        let delay = ((startedAt ?? finishedAt ?? now) - createdAt).wholeMilliseconds
        let execution = startedAt.map { ((finishedAt ?? now) - $0).wholeMilliseconds } ?? 0
        return (delay, execution, startedAt != nil)
    }

    var isQueued: Bool { phase == .queued }

    var isRunning: Bool {
        if case .running = phase { return true }
        return false
    }

    /// What the running handler produces is dropped (the flag the runner reads without the lock).
    var isStopped: Bool {
        switch phase {
        case .stopped, .expired: true
        case .queued, .running, .finished, .purged: false
        }
    }

    /// Deleted (TTL, purge): the API answers 404 for it.
    var isGone: Bool {
        switch phase {
        case .expired, .purged: true
        case .queued, .running, .finished, .stopped: false
        }
    }

    /// What the job counts against the retained-results budget once final.
    var retainedBytes: Int { inputBytes + resultBytes }

    // MARK: Moves

    mutating func start(at now: JobTime) -> Bool {
        guard case .queued = phase else { return false }
        phase = .running(startedAt: now)
        return true
    }

    mutating func recordChunk(bytes: Int) -> Bool {
        guard case .running = phase else { return false }
        chunkBytes += bytes
        chunkCount += 1
        return true
    }

    /// The runner's result. With `chunksAsOutput` the stream's chunks are the output (the handler
    /// did not aggregate them), and their bytes count with the result's.
    mutating func finish(failed: Bool, resultBytes: Int, chunksAsOutput: Bool, at now: JobTime) -> Bool {
        guard case .running(let startedAt) = phase else { return false }
        phase = .finished(failed ? .failed : .completed, startedAt: startedAt, finishedAt: now)
        self.resultBytes = chunksAsOutput ? resultBytes + chunkBytes : resultBytes
        return true
    }

    mutating func stop(as status: JobStatus, at now: JobTime) -> Bool {
        switch phase {
        case .queued: phase = .stopped(status, startedAt: nil, finishedAt: now)
        case .running(let startedAt): phase = .stopped(status, startedAt: startedAt, finishedAt: now)
        case .finished, .stopped, .expired, .purged: return false
        }
        return true
    }

    mutating func expire() -> Bool {
        switch phase {
        case .queued: phase = .expired(startedAt: nil)
        case .running(let startedAt): phase = .expired(startedAt: startedAt)
        case .finished, .stopped, .expired, .purged: return false
        }
        return true
    }

    mutating func purge() -> Bool {
        guard case .queued = phase else { return false }
        phase = .purged
        return true
    }
}

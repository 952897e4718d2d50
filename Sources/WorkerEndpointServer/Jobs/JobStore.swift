import EndpointAPI
import Logging
import Synchronization
import WorkerJSON
import WorkerRuntime

/// Runs and remembers the jobs of the endpoint API: a queue served with the handler's
/// concurrency, the status lifecycle, cancellation, execution timeouts, TTL and retention. Jobs
/// run through the runtime's job runner, as the queue worker's do.
final class JobStore: Sendable {
    struct Counters: Sendable {
        var completed = 0
        var failed = 0
        var retried = 0
    }

    struct State {
        var jobs: [String: StoredJob] = [:]
        var queue = FIFO<String>()
        var queued = 0
        var running = 0
        var concurrency: Int
        var counters = Counters()
        /// Finished jobs in finishing order, one list per retention, for O(1) expiry.
        var expiries = FIFO<Expiry>()
        var syncExpiries = FIFO<Expiry>()
        var listeners: [String: [Int: AsyncStream<JobEvent>.Continuation]] = [:]
        var nextKey = 0
        /// Queued and running jobs: the only ones with a TTL or execution timeout to watch.
        var active: Set<String> = []
        /// /runsync and /status-sync callers waiting for a job to finish, with their deadlines.
        var waiters: [String: [Int: Waiter]] = [:]
        /// Shutting down: no queued job starts any more.
        var closed = false
        /// Shutdown waiting for the running jobs to finish.
        var drainWaiters: [CheckedContinuation<Void, Never>] = []
    }

    struct Expiry {
        let deadline: ContinuousClock.Instant
        let id: String
        /// When the job finished: a retried job that finished again has a newer entry.
        let finished: ContinuousClock.Instant
    }

    struct Waiter {
        let deadline: ContinuousClock.Instant
        let continuation: CheckedContinuation<Void, Never>
    }

    let state: Mutex<State>
    let context: WorkerContext
    let limits: WorkerConfiguration.Limits
    /// The store's clock: tests move it instead of sleeping through retention periods.
    let now: @Sendable () -> ContinuousClock.Instant

    init(context: WorkerContext, now: @escaping @Sendable () -> ContinuousClock.Instant = { .now }) {
        self.context = context
        self.limits = context.configuration.limits
        self.now = now
        state = Mutex(State(concurrency: max(1, context.configuration.concurrency)))
    }

    /// The runtime's job runner, delivering into this store.
    var runner: JobRunner { context.runner(sink: StoreSink(store: self)) }

    var logger: Logger { context.logger }
    var metrics: WorkerMetrics { context.metrics }
    var workerID: String? { context.configuration.podIDIsSet ? context.configuration.workerID : nil }

    // MARK: Queries

    func report(_ id: String) -> JobStatusReport? {
        let now = self.now()
        return state.withLock { $0.jobs[id]?.report(now: now, workerID: workerID) }
    }

    /// The chunks produced since the last poll, and the status.
    func poll(_ id: String) -> JSONValue? {
        state.withLock { state -> JSONValue? in
            guard let job = state.jobs[id] else { return nil }
            let chunks = job.unpolledChunks
            state.jobs[id]!.unpolledChunks = []
            var body: [String: JSONValue] = [
                "id": .string(id), "status": .string(job.status.rawValue),
                "stream": .array(chunks.map { ["output": $0] }),
            ]
            if let error = job.error { body["error"] = .string(error) }
            return .object(body)
        }
    }

    func counts() -> (queued: Int, running: Int, counters: Counters) {
        state.withLock { ($0.queued, $0.running, $0.counters) }
    }

    // MARK: Listening

    /// Events of one job: chunks as they are produced, then `.finished` (at once if it already is).
    func listen(_ id: String) -> AsyncStream<JobEvent>? {
        let (stream, continuation) = AsyncStream<JobEvent>.makeStream()
        let now = self.now()
        let known = state.withLock { state -> Bool in
            guard let job = state.jobs[id] else { return false }
            if job.status.isFinal {
                continuation.yield(.finished(job.report(now: now, workerID: workerID)))
                continuation.finish()
                return true
            }
            let key = state.nextKey
            state.nextKey += 1
            state.listeners[id, default: [:]][key] = continuation
            continuation.onTermination = { [weak self] _ in
                self?.state.withLock { state in
                    state.listeners[id]?[key] = nil
                    if state.listeners[id]?.isEmpty == true { state.listeners[id] = nil }
                }
            }
            return true
        }
        return known ? stream : nil
    }

    /// Waits until the job is final or `timeout` passes (the janitor enforces the deadline);
    /// returns its report then, nil if unknown.
    func waitForFinal(_ id: String, timeout: Duration) async -> JobStatusReport? {
        let deadline = now() + timeout
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let resumeNow = state.withLock { state -> Bool in
                guard let job = state.jobs[id], !job.status.isFinal else { return true }
                let key = state.nextKey
                state.nextKey += 1
                state.waiters[id, default: [:]][key] = Waiter(deadline: deadline, continuation: continuation)
                return false
            }
            if resumeNow { continuation.resume() }
        }
        return report(id)
    }

    func notify(_ listeners: [Int: AsyncStream<JobEvent>.Continuation]?, _ event: JobEvent, finish: Bool) {
        guard let listeners else { return }
        for continuation in listeners.values {
            continuation.yield(event)
            if finish { continuation.finish() }
        }
    }
}

import EndpointAPI
import Logging
import Synchronization
import WorkerJSON
import WorkerRuntime

/// Runs and remembers the jobs of the endpoint API: a queue served with the handler's
/// concurrency, the status lifecycle, cancellation, execution timeouts, TTL and retention. Jobs
/// run through the runtime's job runner, as the queue worker's do. The lifecycle's rules are
/// `JobStateMachine`'s: the store feeds it events under its lock and carries out the actions it
/// answers (tasks, waiters and listeners, webhooks, the table, the janitor's watch).
///
/// One lock guards everything; critical sections are kept short (no hashing of a job's content,
/// no deallocation of finished jobs under it), because a /runsync takes it several times.
final class JobStore: Sendable {
    typealias Counters = JobStateMachine.Counters
    typealias Observers = (waiters: [Waiter], listeners: [AsyncStream<JobEvent>.Continuation])

    struct State {
        /// The lifecycle's rules and the counts they keep (queue, slots, kept results, totals).
        var machine: JobStateMachine
        var jobs = JobTable()
        var queue = FIFO<StoredJob>()
        /// Finished jobs in finishing order, one list per retention, for O(1) expiry.
        var expiries = FIFO<StoredJob>()
        var syncExpiries = FIFO<StoredJob>()
        /// Queued and running jobs: the only ones with a TTL or execution timeout to watch. (A
        /// /runsync job started on its caller's thread joins when that first run returns unfinished.)
        var active: [ObjectIdentifier: StoredJob] = [:]
        /// Jobs someone waits on (/runsync, /status-sync), whose waits have deadlines.
        var waited: [ObjectIdentifier: StoredJob] = [:]
        var nextKey = 0
        /// Shutdown waiting for the running jobs to finish.
        var drainWaiters: [CheckedContinuation<Void, Never>] = []

        /// The machine's counts that tests read: queued jobs, and the bytes of queued inputs and
        /// of kept jobs' inputs and results.
        var queued: Int { machine.queued }
        var queuedBytes: Int { machine.queuedBytes }
        var retainedBytes: Int { machine.retention.bytes }
    }

    struct Waiter {
        let deadline: JobTime
        let continuation: UnsafeContinuation<Void, Never>
    }

    let state: Mutex<State>
    let context: WorkerContext
    let limits: ServerLimits
    let ids = JobIDs()
    /// `/run`'s `Idempotency-Key`s seen within the run retention.
    let idempotency = IdempotencyKeys()
    /// Shared by the runners of all jobs (one is made per job, for its sink).
    let runnerSettings: JobRunner.Settings
    /// The job concurrency, unless the handler's rule is dynamic (re-evaluated as jobs start).
    let fixedConcurrency: Int?
    /// The store's clock: tests move it instead of sleeping through retention periods.
    let now: @Sendable () -> ContinuousClock.Instant

    init(
        context: WorkerContext, limits: ServerLimits = ServerLimits(), now: @escaping @Sendable () -> ContinuousClock.Instant = { .now }
    ) {
        self.context = context
        self.limits = limits
        self.runnerSettings = context.runnerSettings
        self.now = now
        let concurrency = context.options.concurrency
        fixedConcurrency =
            concurrency.isDynamic ? nil : concurrency.evaluate(current: 1, environment: context.configuration.concurrency)
        let retention = JobRetention(
            runPeriod: limits.retention, syncPeriod: limits.syncRetention, maxRuns: limits.maxRetainedResults,
            maxSyncs: limits.maxRetainedSyncResults, budget: limits.retainedResultBytes)
        let machine = JobStateMachine(
            concurrency: max(1, context.configuration.concurrency), queuedInputBytes: limits.queuedInputBytes, retention: retention)
        state = Mutex(State(machine: machine))
    }

    /// The runtime's job runner, delivering `job`'s output into this store.
    func runner(for job: StoredJob) -> JobRunner { JobRunner(settings: runnerSettings, inProcessSink: StoreSink(store: self, job: job)) }
    var logger: Logger { context.logger }
    var metrics: WorkerMetrics { context.metrics }
    var workerID: String? { context.configuration.podIDIsSet ? context.configuration.workerID : nil }

    // MARK: Queries

    func report(_ id: String) -> JobStatusReport? {
        let now = JobTime(self.now())
        return state.withLock { $0.jobs[id: id]?.report(now: now, workerID: workerID) }
    }

    /// The chunks produced since the last poll, and the status.
    func poll(_ id: String) -> JSONValue? {
        let polled = state.withLock { state -> (JobStatus, [JSONValue], String?)? in
            guard let job = state.jobs[id: id] else { return nil }
            defer { job.unpolledChunks = [] }
            return (job.status, job.unpolledChunks, job.error)
        }
        guard let (status, chunks, error) = polled else { return nil }
        var body: [String: JSONValue] = [
            "id": .string(id), "status": .string(status.rawValue), "stream": .array(chunks.map { ["output": $0] }),
        ]
        if let error { body["error"] = .string(error) }
        return .object(body)
    }

    func counts() -> (queued: Int, running: Int, counters: Counters) {
        state.withLock { ($0.machine.queued, $0.machine.running, $0.machine.counters) }
    }

    // MARK: Listening and waiting

    /// Events of one job: chunks as they are produced, then `.finished` (at once if it already is).
    func listen(_ id: String) -> AsyncStream<JobEvent>? {
        let (stream, continuation) = AsyncStream<JobEvent>.makeStream()
        let now = JobTime(self.now())
        let known = state.withLock { state -> Bool in
            guard let job = state.jobs[id: id] else { return false }
            if job.status.isFinal {
                continuation.yield(.finished(job.report(now: now, workerID: workerID)))
                continuation.finish()
                return true
            }
            addListener(continuation, to: job, in: &state)
            return true
        }
        return known ? stream : nil
    }

    func addListener(_ continuation: AsyncStream<JobEvent>.Continuation, to job: StoredJob, in state: inout State) {
        let key = state.nextKey
        state.nextKey += 1
        job.listeners[key] = continuation
        continuation.onTermination = { [weak self, weak job] _ in
            guard let job else { return }
            self?.state.withLock { _ in job.listeners[key] = nil }
        }
    }

    /// Waits until the job is final or `timeout` passes (the janitor enforces the deadline);
    /// returns its report then, nil if unknown.
    func waitForFinal(_ id: String, timeout: Duration) async -> JobStatusReport? {
        let now = JobTime(self.now())
        let deadline = now + timeout
        // A job that already finished (a /runsync job that never suspended) needs no wait.
        let ready = state.withLock { state -> (known: Bool, report: JobStatusReport?) in
            guard let job = state.jobs[id: id] else { return (false, nil) }
            return (true, job.status.isFinal ? job.report(now: now, workerID: workerID) : nil)
        }
        guard ready.known else { return nil }
        if let report = ready.report { return report }
        await withUnsafeContinuation { (continuation: UnsafeContinuation<Void, Never>) in
            let resumeNow = state.withLock { state -> Bool in
                guard let job = state.jobs[id: id], !job.status.isFinal else { return true }
                let key = state.nextKey
                state.nextKey += 1
                job.waiters[key] = Waiter(deadline: deadline, continuation: continuation)
                state.waited[job.key] = job
                return false
            }
            if resumeNow { continuation.resume() }
        }
        return report(id)
    }

    /// Takes a final job's waiters and listeners (under the lock) for `notify` (after it).
    static func takeObservers(of job: StoredJob, in state: inout State) -> Observers {
        defer {
            job.waiters = [:]
            job.listeners = [:]
        }
        if !job.waiters.isEmpty { state.waited[job.key] = nil }
        return (Array(job.waiters.values), Array(job.listeners.values))
    }

    func notify(_ observers: Observers, _ report: @autoclosure () -> JobStatusReport) {
        if !observers.listeners.isEmpty {
            let event = JobEvent.finished(report())
            for continuation in observers.listeners {
                continuation.yield(event)
                continuation.finish()
            }
        }
        for waiter in observers.waiters { waiter.continuation.resume() }
    }
}

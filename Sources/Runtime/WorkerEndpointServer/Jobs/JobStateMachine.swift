import EndpointAPI

/// The endpoint API's job lifecycle rules, in postgres-nio's style: a value whose methods take
/// events (a job submitted, started, producing output, finished, stopped, past a deadline,
/// retried, purged) and return what to do (`JobStateMachine+Actions`). No locks, clocks, tasks or
/// I/O: time comes in as a value, and `JobStore` carries the actions out under its lock and after
/// it. The machine keeps the store-wide books (the queue's count and bytes, the slots, the kept
/// results, the totals); each job's own state is a `JobLifecycle` the caller keeps and passes in,
/// so the rules do not depend on the in-memory table and a shared store can feed them the same
/// events.
struct JobStateMachine: Equatable, Sendable {
    struct Counters: Equatable, Sendable {
        var completed = 0
        var failed = 0
        var retried = 0
    }

    /// `QUEUED_INPUT_MB` in bytes: the most the queued jobs' inputs may hold.
    let queuedInputBytes: Int
    private(set) var queued = 0
    private(set) var queuedBytes = 0
    private(set) var running = 0
    /// The job concurrency last in force (a handler's rule may change it as jobs start).
    private(set) var concurrency: Int
    /// Shutting down: no queued job starts any more.
    private(set) var closed = false
    private(set) var counters = Counters()
    private(set) var retention: JobRetention
    /// The queue depth the metrics were last given.
    private var publishedQueueDepth = 0

    init(concurrency: Int, queuedInputBytes: Int, retention: JobRetention) {
        self.concurrency = concurrency
        self.queuedInputBytes = queuedInputBytes
        self.retention = retention
    }

    // MARK: Queue and slots

    /// A new job. Past the budget it is refused, unless the queue is empty: one job larger than
    /// the whole budget still runs.
    mutating func submit(_ job: JobLifecycle) -> SubmitAction {
        guard queued == 0 || queuedBytes + job.inputBytes <= queuedInputBytes else { return .refuse }
        enterQueue(job)
        return .enqueue
    }

    /// Whether queued jobs may start now, under `limit` (the handler's concurrency rule, which the
    /// store evaluates: it may be the handler's code). The store then takes queue entries for
    /// `start` while `hasFreeSlot`.
    mutating func mayStart(concurrency limit: Int) -> Bool {
        concurrency = limit
        return !closed && running < limit
    }

    var hasFreeSlot: Bool { running < concurrency }

    /// The queue's next entry, taken by a runner.
    mutating func start(_ job: inout JobLifecycle, now: JobTime) -> StartAction {
        guard job.start(at: now) else { return .skip }
        leaveQueue(job)
        running += 1
        return .run
    }

    func launched(_ job: JobLifecycle) -> LaunchAction {
        if job.status.isFinal { return .finished }
        return job.isStopped ? .cancel : .keep
    }

    /// A runner returned (whatever became of its job): its slot is free. The store then starts
    /// what may start, and when nothing runs (`isIdle`) wakes shutdown's drain.
    mutating func runnerReturned() {
        running -= 1
    }

    var isIdle: Bool { running == 0 }

    /// The depth for the queue gauge when it changed since it was last given: a gauge set twice a
    /// job to the same value costs for nothing.
    mutating func queueDepthToPublish() -> Int? {
        guard queued != publishedQueueDepth else { return nil }
        publishedQueueDepth = queued
        return queued
    }

    // MARK: Output and results

    func progress(_ job: JobLifecycle) -> OutputAction {
        job.isRunning ? .record : .drop
    }

    func chunk(_ job: inout JobLifecycle, bytes: Int) -> OutputAction {
        job.recordChunk(bytes: bytes) ? .record : .drop
    }

    /// `streamWithoutOutput`: a stream's result whose output is `[]` (the handler did not
    /// aggregate its chunks); the chunks are the output then, if there were any.
    mutating func result(
        _ job: inout JobLifecycle, failed: Bool, bytes: Int, streamWithoutOutput: Bool, now: JobTime
    ) -> ResultAction {
        let outputFromChunks = streamWithoutOutput && job.chunkCount > 0
        guard job.finish(failed: failed, resultBytes: bytes, chunksAsOutput: outputFromChunks, at: now) else { return .drop }
        if failed { counters.failed += 1 } else { counters.completed += 1 }
        return .finish(retention: retention.keep(job), outputFromChunks: outputFromChunks)
    }

    // MARK: Stops and deadlines

    /// /cancel, an execution timeout (`.timedOut`), shutdown, or a route that gives up: a queued
    /// job never runs, a running one's output is dropped from now on.
    mutating func stop(_ job: inout JobLifecycle, as status: JobStatus, now: JobTime) -> StopAction {
        if job.isGone { return .gone }
        let wasQueued = job.isQueued
        guard job.stop(as: status, at: now) else { return .alreadyFinal }
        if wasQueued { leaveQueue(job) }
        if status == .timedOut { counters.failed += 1 }
        return .stop(retention: retention.keep(job), wasQueued: wasQueued, sendWebhook: status == .timedOut)
    }

    /// The janitor's pass over a watched job. The TTL counts from submission and wins over the
    /// execution timeout, which counts from the start.
    mutating func checkDeadlines(_ job: inout JobLifecycle, now: JobTime) -> DeadlineAction {
        if now >= job.createdAt + job.ttl {
            let wasQueued = job.isQueued
            guard job.expire() else { return .notDue }
            if wasQueued { leaveQueue(job) }
            return .expire
        }
        if job.isRunning, let startedAt = job.startedAt, now >= startedAt + job.executionTimeout {
            return .timeOut(job.executionTimeout)
        }
        return .notDue
    }

    // MARK: Retry, purge, shutdown

    /// /retry: a FAILED or TIMED_OUT job is queued again under its id, past the input budget if
    /// need be (it was admitted once).
    mutating func retry(_ job: JobLifecycle, now: JobTime) -> RetryAction {
        guard job.status == .failed || job.status == .timedOut else { return .refuse(job.status) }
        let again = JobLifecycle(requeueing: job, at: now)
        enterQueue(again)
        counters.retried += 1
        return .requeue(again)
    }

    /// One entry of the queue under /purge-queue; `queuePurged` follows the last.
    func purge(_ job: inout JobLifecycle) -> PurgeAction {
        job.purge() ? .remove : .skip
    }

    /// /purge-queue emptied the queue.
    mutating func queuePurged() {
        queued = 0
        queuedBytes = 0
    }

    /// Shutdown: no queued job starts from now on (the store then stops each as cancelled).
    mutating func close() {
        closed = true
    }

    // MARK: Kept results

    /// See `JobRetention.nextEviction`; the store then removes that list's oldest and `forget`s it.
    func nextEviction(after newest: JobLifecycle, oldestFinish: (JobRetention.List) -> JobTime?) -> JobRetention.List? {
        retention.nextEviction(after: newest, oldestFinish: oldestFinish)
    }

    /// A kept job was removed from its list (evicted, or its retention passed).
    mutating func forget(_ job: JobLifecycle) {
        retention.forget(job)
    }

    /// Whether the oldest job of a list has outlived its retention (the janitor's check).
    func retentionPassed(_ oldest: JobLifecycle, now: JobTime) -> Bool {
        retention.hasPassed(oldest, now: now)
    }

    // MARK: Private

    private mutating func enterQueue(_ job: JobLifecycle) {
        queued += 1
        queuedBytes += job.inputBytes
    }

    /// A queued job left the queue (started, stopped, expired).
    private mutating func leaveQueue(_ job: JobLifecycle) {
        queued -= 1
        queuedBytes -= job.inputBytes
    }
}

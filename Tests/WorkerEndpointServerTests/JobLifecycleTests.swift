import EndpointAPI
import Testing
import TestSupport

@testable import WorkerEndpointServer

/// The job lifecycle's rules fed events directly, on a made-up clock: no store, lock, task or
/// socket. What the store then does with each action is covered by the server's tests.
@Suite("The job lifecycle's state machine", .defaultPass)
struct JobLifecycleTests {
    static func at(_ seconds: Int) -> JobTime { JobTime(sinceEpoch: .seconds(seconds)) }

    static func machine(
        concurrency: Int = 1, queuedInputBytes: Int = 1000, maxRuns: Int = 100, maxSyncs: Int = 100, budget: Int = 1 << 20
    ) -> JobStateMachine {
        let retention = JobRetention(
            runPeriod: .seconds(1800), syncPeriod: .seconds(60), maxRuns: maxRuns, maxSyncs: maxSyncs, budget: budget)
        return JobStateMachine(concurrency: concurrency, queuedInputBytes: queuedInputBytes, retention: retention)
    }

    static func job(
        at seconds: Int = 0, sync: Bool = false, retained: Bool = true, bytes: Int = 100, ttl: Duration = .seconds(3600),
        executionTimeout: Duration = .seconds(600)
    ) -> JobLifecycle {
        JobLifecycle(
            createdAt: at(seconds), ttl: ttl, executionTimeout: executionTimeout, isSync: sync, retained: retained, inputBytes: bytes)
    }

    /// Submits `job` and has a runner take it at `seconds`.
    static func startRunning(_ job: inout JobLifecycle, in machine: inout JobStateMachine, at seconds: Int = 1) {
        #expect(machine.submit(job) == .enqueue)
        let limit = machine.concurrency
        let mayStart = machine.mayStart(concurrency: limit)
        #expect(mayStart)
        #expect(machine.start(&job, now: at(seconds)) == .run)
    }

    static func complete(
        _ job: inout JobLifecycle, bytes: Int = 0, at seconds: Int, in machine: inout JobStateMachine
    ) -> JobStateMachine.ResultAction {
        machine.result(&job, failed: false, bytes: bytes, streamWithoutOutput: false, now: at(seconds))
    }

    static let keptRun = JobStateMachine.ResultAction.finish(retention: .keep(.run), outputFromChunks: false)

    @Test("submitted: IN_QUEUE, counted with its input; its delay grows while it waits; the gauge is given each new depth once")
    func queued() {
        var machine = Self.machine()
        let job = Self.job(at: 10, bytes: 300)
        #expect(machine.submit(job) == .enqueue)
        #expect(job.status == .inQueue)
        #expect((machine.queued, machine.queuedBytes, machine.running) == (1, 300, 0))
        let timings = job.timings(now: Self.at(12))
        #expect((timings.delay, timings.execution, timings.started) == (2000, 0, false))
        #expect(machine.queueDepthToPublish() == 1)
        #expect(machine.queueDepthToPublish() == nil)
    }

    @Test("past QUEUED_INPUT_MB a job is refused, up to it accepted; an empty queue takes one job larger than the budget")
    func inputBudget() {
        var machine = Self.machine(queuedInputBytes: 1000)
        #expect(machine.submit(Self.job(bytes: 5000)) == .enqueue)
        #expect(machine.submit(Self.job(bytes: 1)) == .refuse)
        #expect((machine.queued, machine.queuedBytes) == (1, 5000))
        var other = Self.machine(queuedInputBytes: 1000)
        #expect(other.submit(Self.job(bytes: 600)) == .enqueue)
        #expect(other.submit(Self.job(bytes: 400)) == .enqueue)
        #expect(other.submit(Self.job(bytes: 1)) == .refuse)
        #expect((other.queued, other.queuedBytes) == (2, 1000))
    }

    @Test("taken by a runner: IN_PROGRESS, one slot used; no free slot or a shutdown starts nothing; a returning runner frees it")
    func started() {
        var machine = Self.machine(concurrency: 1)
        var first = Self.job(at: 0)
        var second = Self.job(at: 0)
        #expect(machine.submit(first) == .enqueue)
        #expect(machine.submit(second) == .enqueue)
        var mayStart = machine.mayStart(concurrency: 1)
        #expect(mayStart)
        #expect(machine.start(&first, now: Self.at(3)) == .run)
        #expect(first.status == .inProgress)
        #expect(first.startedAt == Self.at(3))
        #expect((machine.queued, machine.queuedBytes, machine.running) == (1, 100, 1))
        #expect(!machine.hasFreeSlot)
        mayStart = machine.mayStart(concurrency: 1)
        #expect(!mayStart)
        #expect(machine.launched(first) == .keep)
        let timings = first.timings(now: Self.at(5))
        #expect((timings.delay, timings.execution, timings.started) == (3000, 2000, true))
        // A handler's rule raises the concurrency: the second may start.
        mayStart = machine.mayStart(concurrency: 2)
        #expect(mayStart)
        #expect(machine.concurrency == 2)
        #expect(machine.start(&second, now: Self.at(4)) == .run)
        #expect(machine.start(&second, now: Self.at(5)) == .skip, "taken once only")
        #expect(second.startedAt == Self.at(4))
        #expect(machine.running == 2)
        machine.runnerReturned()
        #expect(!machine.isIdle)
        machine.runnerReturned()
        #expect(machine.isIdle)
        machine.close()
        #expect(machine.hasFreeSlot)
        mayStart = machine.mayStart(concurrency: 2)
        #expect(!mayStart, "shut down: queued jobs no longer start")
    }

    @Test("completed and failed: final with the runner's result, counted, kept in the /run list with input and result bytes")
    func results() {
        var machine = Self.machine(concurrency: 2)
        var done = Self.job(at: 0, bytes: 100)
        var broken = Self.job(at: 0, bytes: 50)
        Self.startRunning(&done, in: &machine, at: 1)
        Self.startRunning(&broken, in: &machine, at: 1)
        #expect(Self.complete(&done, bytes: 40, at: 4, in: &machine) == Self.keptRun)
        #expect(machine.result(&broken, failed: true, bytes: 10, streamWithoutOutput: false, now: Self.at(5)) == Self.keptRun)
        #expect(done.status == .completed)
        #expect(broken.status == .failed)
        #expect(done.finishedAt == Self.at(4))
        let timings = done.timings(now: Self.at(100))
        #expect((timings.delay, timings.execution) == (1000, 3000), "final: the clock no longer counts")
        #expect(machine.counters == JobStateMachine.Counters(completed: 1, failed: 1, retried: 0))
        #expect((machine.retention.runs, machine.retention.syncs, machine.retention.bytes) == (2, 0, 200))
        #expect(machine.running == 2, "a slot is freed when its runner returns, not with the result")
        #expect(machine.launched(done) == .finished)
    }

    @Test("streaming: progress and chunks are kept while it runs; chunks the handler did not aggregate become the output")
    func streaming() {
        var machine = Self.machine()
        var job = Self.job()
        Self.startRunning(&job, in: &machine)
        #expect(machine.progress(job) == .record)
        #expect(machine.chunk(&job, bytes: 10) == .record)
        #expect(machine.chunk(&job, bytes: 15) == .record)
        #expect((job.chunkCount, job.chunkBytes) == (2, 25))
        let action = machine.result(&job, failed: false, bytes: 2, streamWithoutOutput: true, now: Self.at(9))
        #expect(action == .finish(retention: .keep(.run), outputFromChunks: true))
        #expect(job.status == .completed)
        #expect(job.resultBytes == 27, "the chunks' bytes count with the result's")
        #expect(machine.retention.bytes == 127)
        #expect(machine.progress(job) == .drop)
        #expect(machine.chunk(&job, bytes: 5) == .drop)
        #expect(job.chunkCount == 2)
    }

    @Test("a stream the handler aggregated, or one without chunks, keeps its own output")
    func streamOutputs() {
        var machine = Self.machine(concurrency: 2)
        var aggregated = Self.job()
        Self.startRunning(&aggregated, in: &machine)
        #expect(machine.chunk(&aggregated, bytes: 10) == .record)
        #expect(machine.result(&aggregated, failed: false, bytes: 30, streamWithoutOutput: false, now: Self.at(2)) == Self.keptRun)
        #expect(aggregated.resultBytes == 30)
        var empty = Self.job()
        Self.startRunning(&empty, in: &machine)
        #expect(machine.result(&empty, failed: false, bytes: 2, streamWithoutOutput: true, now: Self.at(2)) == Self.keptRun)
        #expect(empty.resultBytes == 2)
    }

    @Test("cancelling a queued job: CANCELLED at once, out of the queue's counts, kept, never started; no webhook")
    func cancelQueued() {
        var machine = Self.machine()
        var job = Self.job(at: 0, bytes: 70)
        #expect(machine.submit(job) == .enqueue)
        #expect(machine.stop(&job, as: .cancelled, now: Self.at(2)) == .stop(retention: .keep(.run), wasQueued: true, sendWebhook: false))
        #expect(job.status == .cancelled)
        #expect(job.isStopped)
        #expect(job.startedAt == nil)
        #expect((machine.queued, machine.queuedBytes) == (0, 0))
        #expect(machine.counters == JobStateMachine.Counters())
        let timings = job.timings(now: Self.at(9))
        #expect((timings.delay, timings.execution, timings.started) == (2000, 0, false))
        // Its queue entry is stale: the dispatcher and /purge-queue skip it.
        let mayStart = machine.mayStart(concurrency: 1)
        #expect(mayStart)
        #expect(machine.start(&job, now: Self.at(3)) == .skip)
        #expect(machine.running == 0)
        #expect(machine.purge(&job) == .skip)
        #expect(machine.retention.bytes == 70)
    }

    @Test("cancelling a running job: CANCELLED; its late output and result are dropped; cancelling again changes nothing")
    func cancelRunning() {
        var machine = Self.machine()
        var job = Self.job()
        Self.startRunning(&job, in: &machine, at: 1)
        #expect(machine.stop(&job, as: .cancelled, now: Self.at(2)) == .stop(retention: .keep(.run), wasQueued: false, sendWebhook: false))
        #expect(job.status == .cancelled)
        #expect(job.isStopped)
        #expect(machine.launched(job) == .finished)
        #expect(machine.progress(job) == .drop)
        #expect(machine.chunk(&job, bytes: 1) == .drop)
        // Completing a cancelled job is ignored: it stays CANCELLED and nothing is counted.
        #expect(Self.complete(&job, bytes: 10, at: 3, in: &machine) == .drop)
        #expect(job.status == .cancelled)
        #expect(job.finishedAt == Self.at(2))
        #expect(machine.counters == JobStateMachine.Counters())
        #expect(machine.running == 1)
        machine.runnerReturned()
        #expect(machine.isIdle)
        #expect(machine.stop(&job, as: .cancelled, now: Self.at(5)) == .alreadyFinal)
        #expect(job.finishedAt == Self.at(2))
        #expect((machine.retention.runs, machine.retention.bytes) == (1, 100))
    }

    @Test("execution timeout: due from the start, not the submission; TIMED_OUT counts as failed and sends the webhook")
    func executionTimeout() {
        var machine = Self.machine()
        var job = Self.job(at: 0, executionTimeout: .seconds(10))
        #expect(machine.submit(job) == .enqueue)
        #expect(machine.checkDeadlines(&job, now: Self.at(50)) == .notDue, "queued: its timeout has not begun")
        let mayStart = machine.mayStart(concurrency: 1)
        #expect(mayStart)
        #expect(machine.start(&job, now: Self.at(50)) == .run)
        #expect(machine.checkDeadlines(&job, now: Self.at(59)) == .notDue)
        #expect(machine.checkDeadlines(&job, now: Self.at(60)) == .timeOut(.seconds(10)))
        #expect(job.status == .inProgress, "the janitor reports it; the stop follows")
        #expect(machine.stop(&job, as: .timedOut, now: Self.at(60)) == .stop(retention: .keep(.run), wasQueued: false, sendWebhook: true))
        #expect(job.status == .timedOut)
        #expect(machine.counters == JobStateMachine.Counters(completed: 0, failed: 1, retried: 0))
        #expect(machine.checkDeadlines(&job, now: Self.at(70)) == .notDue, "final: no deadline left")
        #expect(Self.complete(&job, at: 61, in: &machine) == .drop)
    }

    @Test("TTL while queued: deleted (gone), out of the queue's counts once, never started, nothing kept")
    func ttlQueued() {
        var machine = Self.machine()
        var job = Self.job(at: 0, bytes: 40, ttl: .seconds(60))
        #expect(machine.submit(job) == .enqueue)
        #expect(machine.checkDeadlines(&job, now: Self.at(59)) == .notDue)
        #expect(machine.checkDeadlines(&job, now: Self.at(60)) == .expire)
        #expect(job.isGone)
        #expect(job.isStopped)
        #expect(job.status == .inQueue)
        #expect((machine.queued, machine.queuedBytes) == (0, 0))
        #expect(machine.checkDeadlines(&job, now: Self.at(61)) == .notDue, "expired once")
        #expect((machine.queued, machine.queuedBytes) == (0, 0))
        let mayStart = machine.mayStart(concurrency: 1)
        #expect(mayStart)
        #expect(machine.start(&job, now: Self.at(61)) == .skip)
        #expect(machine.stop(&job, as: .cancelled, now: Self.at(61)) == .gone)
        #expect(machine.purge(&job) == .skip)
        #expect(machine.retention.bytes == 0)
    }

    @Test("TTL while running: deleted; it wins over the execution timeout; a task made meanwhile is cancelled; its result is dropped")
    func ttlRunning() {
        var machine = Self.machine()
        var job = Self.job(at: 0, ttl: .seconds(60), executionTimeout: .seconds(30))
        Self.startRunning(&job, in: &machine, at: 10)
        #expect(machine.checkDeadlines(&job, now: Self.at(60)) == .expire)
        #expect(job.isGone)
        #expect(job.status == .inProgress)
        #expect(machine.launched(job) == .cancel)
        #expect(Self.complete(&job, at: 61, in: &machine) == .drop)
        #expect(machine.counters == JobStateMachine.Counters())
        #expect(machine.running == 1, "its slot is freed when its cancelled task returns")
        machine.runnerReturned()
        #expect(machine.isIdle)
    }

    @Test("retry: a FAILED or TIMED_OUT job is queued again, fresh, past the input budget too; other states are refused")
    func retry() {
        var machine = Self.machine(queuedInputBytes: 100)
        var failed = Self.job(at: 0, bytes: 100, ttl: .seconds(77))
        Self.startRunning(&failed, in: &machine, at: 1)
        #expect(machine.result(&failed, failed: true, bytes: 5, streamWithoutOutput: false, now: Self.at(2)) == Self.keptRun)
        let waiting = Self.job(at: 2, bytes: 100)
        #expect(machine.submit(waiting) == .enqueue)
        guard case .requeue(let again) = machine.retry(failed, now: Self.at(3)) else {
            Issue.record("a FAILED job is retried")
            return
        }
        #expect(again.status == .inQueue)
        #expect(again.createdAt == Self.at(3))
        #expect(again.ttl == Duration.seconds(77))
        #expect((again.inputBytes, again.resultBytes) == (100, 0))
        #expect((machine.queued, machine.queuedBytes) == (2, 200), "let in past the budget: it was admitted once")
        #expect(machine.counters.retried == 1)
        #expect(failed.status == .failed, "the old record is left as it was")
        #expect(machine.retry(waiting, now: Self.at(3)) == .refuse(.inQueue))

        var other = Self.machine()
        var completed = Self.job()
        Self.startRunning(&completed, in: &other)
        #expect(other.retry(completed, now: Self.at(2)) == .refuse(.inProgress))
        _ = Self.complete(&completed, at: 2, in: &other)
        #expect(other.retry(completed, now: Self.at(3)) == .refuse(.completed))
        var cancelled = Self.job()
        var timedOut = Self.job()
        #expect(other.submit(cancelled) == .enqueue)
        #expect(other.submit(timedOut) == .enqueue)
        _ = other.stop(&cancelled, as: .cancelled, now: Self.at(3))
        _ = other.stop(&timedOut, as: .timedOut, now: Self.at(3))
        #expect(other.retry(cancelled, now: Self.at(4)) == .refuse(.cancelled))
        guard case .requeue = other.retry(timedOut, now: Self.at(4)) else {
            Issue.record("a TIMED_OUT job is retried")
            return
        }
    }

    @Test("purge-queue: queued jobs are removed (gone); running jobs and stale entries are left; the queue's counts go to zero")
    func purge() {
        var machine = Self.machine()
        var running = Self.job()
        Self.startRunning(&running, in: &machine)
        var queued = Self.job(bytes: 30)
        var cancelled = Self.job(bytes: 20)
        #expect(machine.submit(queued) == .enqueue)
        #expect(machine.submit(cancelled) == .enqueue)
        _ = machine.stop(&cancelled, as: .cancelled, now: Self.at(2))
        #expect((machine.queued, machine.queuedBytes) == (1, 30))
        #expect(machine.purge(&queued) == .remove)
        #expect(machine.purge(&cancelled) == .skip)
        #expect(machine.purge(&running) == .skip)
        machine.queuePurged()
        #expect((machine.queued, machine.queuedBytes) == (0, 0))
        #expect(queued.isGone)
        #expect(queued.status == .inQueue)
        #expect(machine.stop(&queued, as: .cancelled, now: Self.at(3)) == .gone)
        #expect(machine.start(&queued, now: Self.at(3)) == .skip)
        #expect(running.status == .inProgress)
        #expect(machine.running == 1)
    }

    @Test("retention: /run results kept 30 minutes, /runsync results 60 s, in lists of their own; one only its listener reads is not")
    func retention() {
        var machine = Self.machine(concurrency: 3)
        var run = Self.job(bytes: 10)
        var sync = Self.job(sync: true, bytes: 20)
        var tool = Self.job(sync: true, retained: false, bytes: 40)
        Self.startRunning(&run, in: &machine)
        Self.startRunning(&sync, in: &machine)
        Self.startRunning(&tool, in: &machine)
        #expect(Self.complete(&run, at: 100, in: &machine) == Self.keptRun)
        #expect(Self.complete(&sync, at: 100, in: &machine) == .finish(retention: .keep(.sync), outputFromChunks: false))
        #expect(Self.complete(&tool, at: 100, in: &machine) == .finish(retention: .forget, outputFromChunks: false))
        #expect((machine.retention.runs, machine.retention.syncs, machine.retention.bytes) == (1, 1, 30))
        #expect(!machine.retentionPassed(sync, now: Self.at(159)))
        #expect(machine.retentionPassed(sync, now: Self.at(160)))
        #expect(!machine.retentionPassed(run, now: Self.at(1899)))
        #expect(machine.retentionPassed(run, now: Self.at(1900)))
        machine.forget(sync)
        #expect((machine.retention.runs, machine.retention.syncs, machine.retention.bytes) == (1, 0, 10))
    }

    @Test("the count caps: past maxRetainedSyncResults the oldest /runsync result goes; /run results are counted apart")
    func countCaps() {
        var machine = Self.machine(concurrency: 10, maxRuns: 5, maxSyncs: 2)
        var lists = Lists()
        var run = Self.job(at: 0)
        Self.startRunning(&run, in: &machine)
        #expect(Self.finish(&run, at: 1, in: &machine, lists: &lists) == [])
        var forgotten: [[JobTime]] = []
        for index in 1...3 {
            var sync = Self.job(at: index, sync: true)
            Self.startRunning(&sync, in: &machine)
            forgotten.append(Self.finish(&sync, at: 10 + index, in: &machine, lists: &lists))
        }
        #expect(forgotten == [[], [], [Self.at(1)]])
        #expect((machine.retention.runs, machine.retention.syncs) == (1, 2))
        #expect(lists.run.map(\.createdAt) == [Self.at(0)])
    }

    @Test("the byte budget: the oldest results go first across both lists; the newest is kept whatever its size")
    func byteBudget() {
        var machine = Self.machine(concurrency: 10, queuedInputBytes: 1 << 20, budget: 1000)
        var lists = Lists()
        var a = Self.job(at: 1, bytes: 200)
        var b = Self.job(at: 2, sync: true, bytes: 200)
        var c = Self.job(at: 3, bytes: 200)
        var d = Self.job(at: 4, sync: true, bytes: 1500)
        var e = Self.job(at: 5, bytes: 50)
        Self.startRunning(&a, in: &machine)
        Self.startRunning(&b, in: &machine)
        Self.startRunning(&c, in: &machine)
        Self.startRunning(&d, in: &machine)
        Self.startRunning(&e, in: &machine)
        #expect(Self.finish(&a, bytes: 200, at: 11, in: &machine, lists: &lists) == [])
        #expect(Self.finish(&b, bytes: 200, at: 12, in: &machine, lists: &lists) == [])
        #expect(Self.finish(&c, bytes: 200, at: 13, in: &machine, lists: &lists) == [Self.at(1)], "the oldest, a /run result")
        #expect(machine.retention.bytes == 800)
        let forgotten = Self.finish(&d, bytes: 1500, at: 14, in: &machine, lists: &lists)
        #expect(forgotten == [Self.at(2), Self.at(3)], "oldest first, from either list")
        #expect(machine.retention.bytes == 3000, "alone and over the budget, the newest is still kept")
        let last = Self.finish(&e, bytes: 50, at: 15, in: &machine, lists: &lists)
        #expect(last == [Self.at(4)], "it goes once a later job needs the room")
        #expect(machine.retention.bytes == 100)
    }

    @Test("illegal moves are refused and change nothing: a second result, stopping a finished job, starting it, its deadlines, a purge")
    func illegalMoves() {
        var machine = Self.machine()
        var job = Self.job()
        Self.startRunning(&job, in: &machine, at: 1)
        #expect(Self.complete(&job, bytes: 10, at: 2, in: &machine) == Self.keptRun)
        let finished = job
        let books = machine
        #expect(machine.result(&job, failed: true, bytes: 99, streamWithoutOutput: false, now: Self.at(3)) == .drop)
        #expect(machine.stop(&job, as: .cancelled, now: Self.at(3)) == .alreadyFinal)
        #expect(machine.stop(&job, as: .timedOut, now: Self.at(3)) == .alreadyFinal)
        #expect(machine.start(&job, now: Self.at(3)) == .skip)
        #expect(machine.checkDeadlines(&job, now: Self.at(99_999)) == .notDue)
        #expect(machine.purge(&job) == .skip)
        #expect(machine.chunk(&job, bytes: 1) == .drop)
        #expect(job == finished)
        #expect(machine == books)
    }

    @Test("the store's clock readings become JobTime exactly: differences and order are kept")
    func clockReadings() {
        let start = ContinuousClock.now
        let later = start + .milliseconds(1500)
        #expect(JobTime(later) - JobTime(start) == .milliseconds(1500))
        #expect(JobTime(start) < JobTime(later))
        #expect(JobTime(start) + .milliseconds(1500) == JobTime(later))
    }

    // MARK: The store's part, kept by hand

    /// The two retention lists, as the store keeps them.
    struct Lists {
        var run: [JobLifecycle] = []
        var sync: [JobLifecycle] = []

        subscript(list: JobRetention.List) -> [JobLifecycle] {
            get { list == .run ? run : sync }
            set {
                if list == .run { run = newValue } else { sync = newValue }
            }
        }
    }

    /// Completes `job` at `seconds` and does what the store does: appends it to its list, then
    /// forgets the oldest result of the list the machine names until it names none. Returns the
    /// forgotten jobs' submission times.
    static func finish(
        _ job: inout JobLifecycle, bytes: Int = 0, at seconds: Int, in machine: inout JobStateMachine, lists: inout Lists
    ) -> [JobTime] {
        guard case .finish(.keep(let list), _) = complete(&job, bytes: bytes, at: seconds, in: &machine) else {
            Issue.record("the result is kept")
            return []
        }
        lists[list].append(job)
        var forgotten: [JobTime] = []
        while let oldestOf = machine.nextEviction(after: job, oldestFinish: { lists[$0].first?.finishedAt }) {
            let oldest = lists[oldestOf].removeFirst()
            machine.forget(oldest)
            forgotten.append(oldest.createdAt)
        }
        return forgotten
    }
}

import Logging
import WorkerJSON

/// What a handler knows about the job it runs, and how it reports back while running.
public struct JobContext: Sendable {
    /// The whole job object, unknown keys included.
    public let job: Job
    /// A logger whose metadata carries `job-id` (and `batch-id` in a batch). Made on each use, so
    /// a job that logs nothing pays nothing for it: keep it in a local to log many lines.
    public var logger: Logger { log.logger }
    let log: JobLog
    /// The worker's id (`RUNPOD_POD_ID`).
    public let workerID: String
    /// When the job's execution timeout runs out: the job's `policy.executionTimeout` (the HTTP
    /// modes default it to 600 s, as RunPod does), else `WorkerOptions.executionTimeout`. Nil when
    /// neither is known (a queue worker whose endpoint timeout was not given). Bound retries and
    /// waits by it; past it the platform has already given up on the job.
    public let deadline: ContinuousClock.Instant?
    private let progressSink: @Sendable (JSONValue) -> Void
    /// The worker's metrics (the endpoint server's registry in the HTTP modes), for handlers that
    /// count things of their own (the gateway, per upstream); nil in harnesses that keep none.
    package var metrics: WorkerMetrics?

    public var id: String { job.id }

    package init(
        job: Job, logger: Logger, workerID: String, deadline: ContinuousClock.Instant?,
        progress: @escaping @Sendable (JSONValue) -> Void
    ) {
        self.init(job: job, log: JobLog(base: logger, job: job), workerID: workerID, deadline: deadline, progress: progress)
    }

    package init(
        job: Job, log: JobLog, workerID: String, deadline: ContinuousClock.Instant?,
        progress: @escaping @Sendable (JSONValue) -> Void
    ) {
        self.job = job
        self.log = log
        self.workerID = workerID
        self.deadline = deadline
        self.progressSink = progress
    }

    /// The time left before `deadline` (zero once passed), nil when there is no deadline.
    public var remainingTime: Duration? {
        deadline.map { max(.zero, $0 - .now) }
    }

    /// Reports progress, shown by `/status` as the job's output while it runs. Posts keep their
    /// order and all arrive before the final result.
    public func progress(_ value: JSONValue) {
        progressSink(value)
    }

    public func progress(_ value: some Encodable) {
        do {
            progressSink(try JSONValue(encoding: value))
        } catch {
            log(.warning, "Progress update dropped: \(error)")
        }
    }

    /// True once the job was stopped by the platform (or the worker is torn down): stop early.
    public var isCancelled: Bool { Task.isCancelled }

    /// Throws `CancellationError` once the job was stopped.
    public func checkCancellation() throws {
        try Task.checkCancellation()
    }
}

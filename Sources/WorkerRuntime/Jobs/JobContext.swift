import Logging

/// What a handler knows about the job it runs, and how it reports back while running.
public struct JobContext: Sendable {
    /// The whole job object, unknown keys included.
    public let job: Job
    /// A logger whose metadata carries `job-id`.
    public let logger: Logger
    /// The worker's id (`RUNPOD_POD_ID`).
    public let workerID: String
    private let progressSink: @Sendable (JSONValue) -> Void

    public var id: String { job.id }

    package init(job: Job, logger: Logger, workerID: String, progress: @escaping @Sendable (JSONValue) -> Void) {
        self.job = job
        self.logger = logger
        self.workerID = workerID
        self.progressSink = progress
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
            logger.warning("Progress update dropped: \(error)")
        }
    }

    /// True once the job was stopped by the platform (or the worker is torn down): stop early.
    public var isCancelled: Bool { Task.isCancelled }

    /// Throws `CancellationError` once the job was stopped.
    public func checkCancellation() throws {
        try Task.checkCancellation()
    }

    /// A context for calling a handler directly in tests, with progress updates collected by `progress`.
    public static func __forTestsOnly(
        job: Job, logger: Logger = Logger(label: "test"), progress: @escaping @Sendable (JSONValue) -> Void = { _ in }
    ) -> JobContext {
        JobContext(job: job, logger: logger, workerID: "test-worker", progress: progress)
    }
}

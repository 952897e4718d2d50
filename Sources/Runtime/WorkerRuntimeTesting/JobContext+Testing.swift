import Logging
import WorkerJSON
import WorkerRuntime

extension JobContext {
    /// A context for calling a handler's `handle` directly in a test; progress updates go to `progress`.
    public static func testing(
        job: Job, logger: Logger = Logger(label: "test"), deadline: ContinuousClock.Instant? = nil,
        progress: @escaping @Sendable (JSONValue) -> Void = { _ in }
    ) -> JobContext {
        JobContext(job: job, logger: logger, workerID: "test-worker", deadline: deadline, progress: progress)
    }
}

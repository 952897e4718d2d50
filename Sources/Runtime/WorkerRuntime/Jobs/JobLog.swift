import Logging

/// A job's logging: the worker's logger, given `job-id` (and `batch-id`) metadata only when a line
/// is actually logged. Attaching metadata copies the log handler and builds a dictionary, and that
/// with its release was 2 % of a `/runsync`, while most jobs log nothing at the levels workers run at.
package struct JobLog: Sendable {
    /// The worker's logger, without the job's metadata.
    package let base: Logger
    let jobID: String
    let batchID: String?

    package init(base: Logger, jobID: String, batchID: String? = nil) {
        self.base = base
        self.jobID = jobID
        self.batchID = batchID
    }

    package init(base: Logger, job: Job) {
        self.init(base: base, jobID: job.id, batchID: job.batchID)
    }

    /// The worker's logger with the job's metadata (made on each use).
    package var logger: Logger {
        var logger = base
        logger[metadataKey: "job-id"] = .string(jobID)
        if let batchID { logger[metadataKey: "batch-id"] = .string(batchID) }
        return logger
    }

    /// Logs `message` with the job's metadata, which is made only when `level` is enabled.
    func callAsFunction(_ level: Logger.Level, _ message: @autoclosure () -> Logger.Message) {
        guard base.logLevel <= level else { return }
        logger.log(level: level, message())
    }
}

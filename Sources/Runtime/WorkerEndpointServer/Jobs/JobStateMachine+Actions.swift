import EndpointAPI

/// What the store does after each event. Small enums, returned by value: no event allocates.
extension JobStateMachine {
    enum SubmitAction: Equatable, Sendable {
        /// Put the job in the table and at the back of the queue, then start what may start.
        case enqueue
        /// Answer 429 with Retry-After: its input would take the queue past `QUEUED_INPUT_MB`.
        case refuse
    }

    enum StartAction: Equatable, Sendable {
        /// Run it: make its task.
        case run
        /// A stale queue entry (cancelled, or past its TTL, while queued): drop it.
        case skip
    }

    /// After the store made a started job's task.
    enum LaunchAction: Equatable, Sendable {
        /// Keep the task, to cancel on /cancel. (A /runsync job started on its caller's thread
        /// joins the janitor's watch only now: most have finished by then.)
        case keep
        /// Already final (it ran to the end on the caller's thread, or was stopped): nothing to
        /// keep; its report is ready.
        case finished
        /// Deleted past its TTL meanwhile, and nobody cancelled the task then: cancel it now.
        case cancel
    }

    /// A progress update or a stream chunk.
    enum OutputAction: Equatable, Sendable {
        /// Keep it (the latest progress; the chunk for /stream and the final output) and pass it to
        /// the job's listeners.
        case record
        /// The job no longer runs (stopped, past its TTL, or final): drop it.
        case drop
    }

    /// The runner's final result.
    enum ResultAction: Equatable, Sendable {
        /// The job no longer runs: drop the result; nothing changes.
        case drop
        /// Final: store the output (the chunks when `outputFromChunks`) and error, drop its
        /// run-time state, stop watching its deadlines, give the final report to its waiters and
        /// listeners, send its webhook, and keep or forget it.
        case finish(retention: JobRetention.Decision, outputFromChunks: Bool)
    }

    /// /cancel, an execution timeout, shutdown, or a route that gives up.
    enum StopAction: Equatable, Sendable {
        /// Deleted (TTL, purge): answer as for an unknown job.
        case gone
        /// Final already: answer with its status; nothing changes.
        case alreadyFinal
        /// Stopped: mark it so for the runner and cancel its task, then as for a result (final
        /// report to waiters and listeners, keep or forget), count it as stopped, send the webhook
        /// when `sendWebhook` (timeouts), and publish the queue (start what may start) when it
        /// `wasQueued`.
        case stop(retention: JobRetention.Decision, wasQueued: Bool, sendWebhook: Bool)
    }

    /// The janitor's look at a watched (queued or running) job.
    enum DeadlineAction: Equatable, Sendable {
        case notDue
        /// Past its TTL: deleted, as on the platform (404 from now on). Mark it stopped for the
        /// runner, cancel its task, forget it, stop watching it, wake its waiters and end its
        /// listeners without a report, count it EXPIRED.
        case expire
        /// Past its execution timeout: stop it as TIMED_OUT (a `stop` after the lock), saying the
        /// limit in the error.
        case timeOut(Duration)
    }

    enum RetryAction: Equatable, Sendable {
        /// Queue a new job under the same id with this lifecycle (it replaces the old one in the
        /// table; the old stays in its retention list until it goes), watch its deadlines, then
        /// start what may start.
        case requeue(JobLifecycle)
        /// 400: only FAILED or TIMED_OUT jobs can be retried; this one is `JobStatus`.
        case refuse(JobStatus)
    }

    /// One queue entry under /purge-queue.
    enum PurgeAction: Equatable, Sendable {
        /// Gone (404), as on the platform: forget it, stop watching it, wake its waiters and end
        /// its listeners without a report, count it CANCELLED.
        case remove
        /// A stale entry (stopped, past its TTL): nothing to do.
        case skip
    }
}

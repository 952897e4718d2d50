#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import EndpointAPI

/// The limits of the HTTP modes. Defaults are RunPod's documented ones.
package struct ServerLimits: Sendable, Equatable {
    /// Largest `/run` and `/runsync` bodies (413 beyond).
    package var runBodyBytes = EndpointLimits.runBodyBytes
    package var runsyncBodyBytes = EndpointLimits.runsyncBodyBytes
    /// How long finished /run results stay queryable (`LOCAL_RESULT_RETENTION`, seconds).
    package var retention = EndpointLimits.runRetention
    /// How long finished /runsync results stay queryable.
    package var syncRetention = EndpointLimits.runsyncRetention
    /// Finished /run results beyond this count are forgotten oldest first, so a flood cannot
    /// exhaust memory.
    package var maxRetainedResults = 100_000
    /// The same for /runsync results, whose callers already have them: a small bound keeps a
    /// flood of /runsync from holding memory (and latency) hostage.
    package var maxRetainedSyncResults = 10_000
    /// A job's `policy` defaults.
    package var defaultExecutionTimeout = EndpointLimits.defaultExecutionTimeout
    package var defaultTTL = EndpointLimits.defaultTTL
    /// Inputs of queued jobs, in bytes (`QUEUED_INPUT_MB`, default 256 MB): past it, `/run` and
    /// `/runsync` answer 429 with `Retry-After` until the queue shrinks.
    package var queuedInputBytes = 256 << 20
    /// Finished jobs' inputs and results kept for `/status`, in bytes (`RETAINED_RESULTS_MB`,
    /// default 512 MB): past it the oldest are forgotten first, as past the count caps.
    package var retainedResultBytes = 512 << 20
    /// A connection that sends nothing for this long is closed (`HTTP_IDLE_TIMEOUT`, seconds):
    /// an idle keep-alive connection, or one that never finishes its headers (slowloris). A
    /// request being answered (a /runsync wait, a stream) is not idle.
    package var idleTimeout: Duration = .seconds(30)
    /// Connections open at once (`HTTP_MAX_CONNECTIONS`); more wait in the kernel's backlog
    /// until one closes, so the process never runs out of descriptors. By default what the
    /// descriptor limit allows, less a reserve for files and outbound connections.
    package var maxConnections = ServerLimits.defaultMaxConnections

    /// Webhook delivery: waits between the attempts after a failure, and each attempt's limit.
    package var webhookRetryDelays: [Duration] = [.seconds(10), .seconds(10)]
    package var webhookTimeout: Duration = .seconds(10)

    package init() {}

    static var defaultMaxConnections: Int {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur < 1 << 40 else { return 4096 }
        return max(32, min(16_384, Int(limit.rlim_cur) - 256))
    }
}

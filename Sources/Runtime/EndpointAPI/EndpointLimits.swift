/// The endpoint API's documented limits and defaults (RunPod's; `docs/protocol.md`, section 3.2).
package enum EndpointLimits {
    /// Largest `/run` body.
    package static let runBodyBytes = 10 * 1024 * 1024
    /// Largest `/runsync` body.
    package static let runsyncBodyBytes = 20 * 1024 * 1024
    /// Largest single stream chunk.
    package static let chunkBytes = 1024 * 1024
    /// Largest chunk a job served by this process may yield: a load-balancing endpoint's response
    /// limit (30 MB). The 1 MiB rule is the platform's stream endpoint's; an answer served from
    /// here (an OpenAI passthrough's, a gateway's) never travels through it.
    package static let inProcessChunkBytes = 30 * 1000 * 1000
    /// `policy.executionTimeout` when the request sets none.
    package static let defaultExecutionTimeout: Duration = .seconds(600)
    /// `policy.ttl` when the request sets none.
    package static let defaultTTL: Duration = .seconds(24 * 3600)
    /// How long a finished `/run` result stays queryable.
    package static let runRetention: Duration = .seconds(30 * 60)
    /// How long a finished `/runsync` result stays queryable.
    package static let runsyncRetention: Duration = .seconds(60)
    /// `/runsync?wait=` and `/status-sync?wait=`: default, and the range it is clamped to.
    package static let defaultWait: Duration = .seconds(90)
    package static let waitRange: ClosedRange<Int64> = 1000...300_000
    /// The largest policy duration accepted, in milliseconds (seven days).
    static let maxPolicyMilliseconds = 7 * 24 * 3600 * 1000
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Logging
import EndpointAPI

/// Everything the runtime reads from the environment, read once. Tests build it from a dictionary.
package struct WorkerConfiguration: Sendable {
    /// The platform's endpoints; nil when `RUNPOD_WEBHOOK_GET_JOB` is unset (local runs).
    package var platform: PlatformEndpoints?
    /// `RUNPOD_POD_ID`, or a random id when unset (then the heartbeat is off).
    package var workerID: String
    package var podIDIsSet: Bool
    package var podHostname: String
    /// `RUNPOD_AI_API_KEY`, sent raw in `Authorization` as the platform expects.
    package var apiKey: String?
    package var pingInterval: Duration
    /// `RUNPOD_ENDPOINT_ID`: when set, logs are JSON lines.
    package var endpointID: String?
    package var logLevel: Logger.Level
    /// `WORKER_CONCURRENCY`, the default number of jobs run at once.
    package var concurrency: Int
    package var timings: WorkerTimings
    /// `OPENAI_BASE_URL` (+ `OPENAI_API_KEY`, …): forward `openai_route` jobs there.
    package var openAI: OpenAIConfiguration?
    /// `PORT` (load-balancing mode), `PORT_HEALTH`, `HEALTH_CHECK_PATH`.
    package var port: Int?
    package var healthPort: Int?
    package var healthCheckPath = "/ping"
    /// `RUNPOD_API_KEY` or `API_KEY`: required of clients by the HTTP modes when set.
    package var serverAPIKey: String?
    /// Every size, count and time limit of the HTTP modes, in one place.
    package var limits = Limits()
    /// Who may reach `/mcp` from a browser or through a proxy.
    package var mcp = MCPAccess()
    /// Request budgets of the HTTP modes (`RATE_LIMIT_<ROUTE>`, `RATE_LIMIT_DEFAULT`); off by default.
    package var rateLimits = RateLimits()

    /// `MCP_ALLOWED_HOSTS` and `MCP_ALLOWED_ORIGINS`: names beyond the defaults (loopback, the
    /// address served on, RunPod's endpoint host) that the `Host` and `Origin` headers of MCP
    /// requests may carry. An entry is a host name, `*.suffix`, or `*` for any.
    package struct MCPAccess: Sendable, Equatable {
        package var allowedHosts: [String] = []
        /// Whole origins (`https://app.example.com`), host patterns as above, or `*`.
        package var allowedOrigins: [String] = []

        package init(allowedHosts: [String] = [], allowedOrigins: [String] = []) {
            self.allowedHosts = allowedHosts
            self.allowedOrigins = allowedOrigins
        }
    }

    package struct PlatformEndpoints: Sendable, Equatable {
        package var jobTake: String
        package var jobDone: String
        package var jobStream: String
        package var ping: String?
    }

    package init(
        platform: PlatformEndpoints? = nil, workerID: String = "local-worker", podIDIsSet: Bool = false,
        podHostname: String = "unknown", apiKey: String? = nil, pingInterval: Duration = .seconds(10),
        endpointID: String? = nil, logLevel: Logger.Level = .info, concurrency: Int = 1,
        timings: WorkerTimings = WorkerTimings()
    ) {
        self.platform = platform
        self.workerID = workerID
        self.podIDIsSet = podIDIsSet
        self.podHostname = podHostname
        self.apiKey = apiKey
        self.pingInterval = pingInterval
        self.endpointID = endpointID
        self.logLevel = logLevel
        self.concurrency = concurrency
        self.timings = timings
    }

    /// Heartbeats are sent only with a key, a pod id and a ping URL, as the platform expects.
    package var heartbeatEnabled: Bool {
        platform?.ping != nil && apiKey?.isEmpty == false && podIDIsSet
    }
}

extension WorkerConfiguration {
    /// The limits of the HTTP modes. Defaults are RunPod's documented ones.
    package struct Limits: Sendable, Equatable {
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
        package var maxConnections = Limits.defaultMaxConnections

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
}

/// The protocol's waits. Production uses the defaults; tests shrink them.
package struct WorkerTimings: Sendable {
    /// Waits between the attempts of a stream-chunk or progress post, and of a final result in
    /// the HTTP modes (3 attempts in all).
    package var resultRetryDelays: [Duration] = [.seconds(2), .seconds(3)]
    /// A queue worker's final result that is not delivered at once is retried in the background
    /// (its slot already free): waits doubling from `resultRetryBase` up to `resultRetryCap`,
    /// jittered, or the platform's `Retry-After`, for `resultRetryBudget` in all
    /// (`WORKER_RESULT_RETRY_SECONDS`), then it is logged as lost.
    package var resultRetryBase: Duration = .seconds(1)
    package var resultRetryCap: Duration = .seconds(30)
    package var resultRetryBudget: Duration = .seconds(600)
    /// Once a graceful shutdown's last job has finished, how long results still waiting may be
    /// retried before the worker exits (`WORKER_DELIVERY_GRACE_SECONDS`).
    package var deliveryGrace: Duration = .seconds(20)
    /// After a 429 from job-take or job-stop.
    package var tooManyRequestsDelay: Duration = .seconds(5)
    /// After job-stop answers "nothing to stop" or fails, so an instant answer cannot spin.
    package var stopPollDelay: Duration = .seconds(1)
    /// Backoff after a 5xx or network error on job-take: doubling from `backoffBase`, capped, jittered.
    package var backoffBase: Duration = .milliseconds(100)
    package var backoffCap: Duration = .seconds(10)
    /// While all slots are busy, how often the concurrency setting is re-evaluated.
    package var concurrencyRecheck: Duration = .seconds(1)
    /// Long-poll limit of job-take and job-stop.
    package var longPollTimeout: Duration = .seconds(90)
    /// Limit of one job-done or job-stream post: a platform that hangs costs one attempt, not the result.
    package var postTimeout: Duration = .seconds(30)

    package init() {}
}

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Logging

/// Everything the runtime reads from the environment, read once. Tests build it from a dictionary.
public struct WorkerConfiguration: Sendable {
    /// The platform's endpoints; nil when `RUNPOD_WEBHOOK_GET_JOB` is unset (local runs).
    public var platform: PlatformEndpoints?
    /// `RUNPOD_POD_ID`, or a random id when unset (then the heartbeat is off).
    public var workerID: String
    public var podIDIsSet: Bool
    public var podHostname: String
    /// `RUNPOD_AI_API_KEY`, sent raw in `Authorization` as the platform expects.
    public var apiKey: String?
    public var pingInterval: Duration
    /// `RUNPOD_ENDPOINT_ID`: when set, logs are JSON lines.
    public var endpointID: String?
    public var logLevel: Logger.Level
    /// `WORKER_CONCURRENCY`, the default number of jobs run at once.
    public var concurrency: Int
    public var timings: WorkerTimings
    /// `OPENAI_BASE_URL` (+ `OPENAI_API_KEY`, …): forward `openai_route` jobs there.
    public var openAI: OpenAIConfiguration?
    /// `PORT` (load-balancing mode), `PORT_HEALTH`, `HEALTH_CHECK_PATH`.
    public var port: Int?
    public var healthPort: Int?
    public var healthCheckPath = "/ping"
    /// `RUNPOD_API_KEY` or `API_KEY`: required of clients by the HTTP modes when set.
    public var serverAPIKey: String?
    /// `LOCAL_RESULT_RETENTION` (seconds): how long finished /run results stay queryable.
    public var resultRetention: Duration = .seconds(30 * 60)

    public struct PlatformEndpoints: Sendable, Equatable {
        public var jobTake: String
        public var jobDone: String
        public var jobStream: String
        public var ping: String?
    }

    public init(
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
    public var heartbeatEnabled: Bool {
        platform?.ping != nil && apiKey?.isEmpty == false && podIDIsSet
    }
}

/// The protocol's waits. Production uses the defaults; tests shrink them.
public struct WorkerTimings: Sendable {
    /// Waits between the attempts of a job-done post (3 attempts in all).
    public var resultRetryDelays: [Duration] = [.seconds(2), .seconds(3)]
    /// After a 429 from job-take or job-stop.
    public var tooManyRequestsDelay: Duration = .seconds(5)
    /// After job-stop answers "nothing to stop" or fails, so an instant answer cannot spin.
    public var stopPollDelay: Duration = .seconds(1)
    /// Backoff after a 5xx or network error on job-take: doubling from `backoffBase`, capped, jittered.
    public var backoffBase: Duration = .milliseconds(100)
    public var backoffCap: Duration = .seconds(10)
    /// While all slots are busy, how often the concurrency setting is re-evaluated.
    public var concurrencyRecheck: Duration = .seconds(1)
    /// Long-poll limit of job-take and job-stop.
    public var longPollTimeout: Duration = .seconds(90)
    /// Limit of a job-done or job-stream post.
    public var postTimeout: Duration = .seconds(60)

    public init() {}
}

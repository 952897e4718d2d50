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

/// What the core reads from the environment, read once: what the queue loop and the platform
/// need. Features read their own settings (`WorkerFeature.configure`). Tests build it from a
/// dictionary.
package struct WorkerConfiguration: Sendable {
    /// The platform's endpoints; nil when `RUNPOD_WEBHOOK_GET_JOB` is unset (local runs).
    package var platform: PlatformEndpoints?
    /// `RUNPOD_POD_ID`, or a random id when unset (then the heartbeat is off).
    package var workerID: String
    package var podIDIsSet: Bool
    var podHostname: String
    /// `RUNPOD_AI_API_KEY`, sent raw in `Authorization` as the platform expects.
    package var apiKey: String?
    var pingInterval: Duration
    /// `RUNPOD_ENDPOINT_ID`: when set, logs are JSON lines.
    package var endpointID: String?
    package var logLevel: Logger.Level
    /// `WORKER_CONCURRENCY`, the default number of jobs run at once.
    package var concurrency: Int
    package var timings: WorkerTimings
    package struct PlatformEndpoints: Sendable, Equatable {
        var jobTake: String
        var jobDone: String
        var jobStream: String
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
    var heartbeatEnabled: Bool {
        platform?.ping != nil && apiKey?.isEmpty == false && podIDIsSet
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

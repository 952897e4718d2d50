import EndpointAPI
import EndpointClient
import WorkerJSON

/// An upstream's endpoint API as the gateway uses it, behind a protocol so the handler is tested
/// against scripted upstreams without sockets.
protocol UpstreamJobs: Sendable {
    /// `POST /runsync?wait=`: the job's report, final or not yet, within `timeout`; `headers` go
    /// with the request (the gateway chain).
    func runSync(_ job: JobRequest, wait: Duration, timeout: Duration, headers: [(name: String, value: String)]) async throws -> JobStatusReport
    /// `POST /run`: the job queued, its id, within `timeout`.
    func run(_ job: JobRequest, timeout: Duration, headers: [(name: String, value: String)]) async throws -> JobStatusReport
    /// `GET /stream/{id}`: the status and the chunks since the last call.
    func stream(_ id: String) async throws -> (status: JobStatus, outputs: [JSONValue])
    func status(_ id: String) async throws -> JobStatusReport
    func cancel(_ id: String) async throws
    /// `GET /health`, as the upstream answers it, within `timeout`.
    func health(timeout: Duration) async throws -> JSONValue
}

/// `UpstreamJobs` over HTTP: the endpoint client.
struct EndpointUpstream: UpstreamJobs {
    let client: EndpointClient

    func runSync(_ job: JobRequest, wait: Duration, timeout: Duration, headers: [(name: String, value: String)]) async throws -> JobStatusReport {
        try await client.runSync(job, wait: wait, timeout: timeout, headers: headers)
    }
    func run(_ job: JobRequest, timeout: Duration, headers: [(name: String, value: String)]) async throws -> JobStatusReport {
        try await client.run(job, timeout: timeout, headers: headers)
    }
    func stream(_ id: String) async throws -> (status: JobStatus, outputs: [JSONValue]) { try await client.stream(id) }
    func status(_ id: String) async throws -> JobStatusReport { try await client.status(id) }
    func cancel(_ id: String) async throws { try await client.cancel(id) }
    func health(timeout: Duration) async throws -> JSONValue { try await client.health(timeout: timeout) }
}

/// What one call to an upstream came to, for the fallback rules and the breaker.
enum UpstreamOutcome: Sendable, Equatable {
    /// COMPLETED: its output is the job's.
    case completed(JSONValue?)
    /// FAILED (or CANCELLED) there: the handler's verdict, passed on, no fallback.
    case failed(String)
    /// Never accepted (refused, 429, 5xx) or TIMED_OUT there: another upstream may take it.
    case retriable(String)
    /// A 4xx: the job's own fault, which no other upstream would take either.
    case refused(String)
    /// The answer was lost after the job was sent: it may run there, so it is not sent elsewhere.
    case lost(String)
    /// This job's own time ran out: says nothing about the upstream.
    case outOfTime(String)

    /// Whether the upstream counts as working, for its breaker (nil: neither).
    var upstreamWorked: Bool? {
        switch self {
        case .completed, .failed, .refused: true
        case .retriable, .lost: false
        case .outOfTime: nil
        }
    }
}

extension EndpointClientError {
    /// The call failed before the upstream accepted the job: sending it elsewhere cannot run it twice.
    var neverAccepted: Bool {
        if wasNotSent { return true }
        return httpStatus.map(UpstreamStatus.notAccepted) ?? false
    }
}

import EndpointAPI

/// A failed call to an endpoint: names the endpoint, the job (when there is one) and what failed.
public struct EndpointClientError: Error, CustomStringConvertible, Sendable {
    private enum Code: Sendable, Equatable {
        case invalidEndpoint
        case notSent
        case transport
        case http(status: Int)
        case invalidAnswer
        case deadline
        case cancelled
        case jobEnded(JobStatus)
    }

    private let code: Code
    /// The endpoint's base URL (without credentials), or the setting that named it.
    public let endpoint: String
    public let jobID: String?
    /// What was being done (`POST /run`, `GET /status`) and what went wrong.
    public let reason: String

    private init(_ code: Code, endpoint: String, jobID: String?, reason: String) {
        self.code = code
        self.endpoint = endpoint
        self.jobID = jobID
        self.reason = reason
    }

    static func invalidEndpoint(_ endpoint: String, _ reason: String) -> Self {
        Self(.invalidEndpoint, endpoint: endpoint, jobID: nil, reason: reason)
    }
    package static func transport(_ endpoint: Endpoint, _ jobID: String?, _ reason: String, notSent: Bool) -> Self {
        Self(notSent ? .notSent : .transport, endpoint: endpoint.description, jobID: jobID, reason: reason)
    }
    static func jobEnded(_ endpoint: Endpoint, _ report: JobStatusReport) -> Self {
        Self(.jobEnded(report.status), endpoint: endpoint.description, jobID: report.id,
             reason: "the job ended \(report.status.rawValue)" + (report.error.map { ": \($0)" } ?? ""))
    }
    package static func http(_ endpoint: Endpoint, _ jobID: String?, status: Int, _ reason: String) -> Self {
        Self(.http(status: status), endpoint: endpoint.description, jobID: jobID, reason: reason)
    }
    static func invalidAnswer(_ endpoint: Endpoint, _ jobID: String?, _ reason: String) -> Self {
        Self(.invalidAnswer, endpoint: endpoint.description, jobID: jobID, reason: reason)
    }
    static func deadline(_ endpoint: Endpoint, _ jobID: String?, _ reason: String) -> Self {
        Self(.deadline, endpoint: endpoint.description, jobID: jobID, reason: reason)
    }
    static func cancelled(_ endpoint: Endpoint, _ jobID: String?) -> Self {
        Self(.cancelled, endpoint: endpoint.description, jobID: jobID, reason: "the call was cancelled")
    }

    /// The HTTP status the endpoint answered with, when it answered with an error.
    public var httpStatus: Int? {
        if case .http(let status) = code { return status }
        return nil
    }

    /// The final status of a job that did not complete (from `output(of:)`).
    public var jobStatus: JobStatus? {
        if case .jobEnded(let status) = code { return status }
        return nil
    }

    /// The request never reached the endpoint (refused, or its name did not resolve): sending it
    /// again cannot run a job twice.
    public var wasNotSent: Bool { code == .notSent }

    /// The deadline passed before the job finished (it was cancelled on the endpoint).
    public var isDeadline: Bool { code == .deadline }

    /// The calling task was cancelled.
    public var isCancellation: Bool { code == .cancelled }

    /// Worth trying again later: the endpoint could not be reached, answered 429 or 5xx.
    public var isTransient: Bool {
        switch code {
        case .transport, .notSent: return true
        case .http(let status): return status == 429 || status >= 500
        default: return false
        }
    }

    public var description: String {
        let job = jobID.map { " (job \($0))" } ?? ""
        let hint: String
        switch code {
        case .invalidEndpoint: return "endpoint \(endpoint) is not usable: \(reason)"
        case .http(401), .http(403): hint = " (check ENDPOINT_API_KEY; RUNPOD_API_KEY is sent only to RunPod's own https:// hosts)"
        case .transport, .notSent: hint = " (check that the endpoint's URL is right and it is reachable)"
        default: hint = ""
        }
        return "endpoint \(endpoint)\(job): \(reason)\(hint)"
    }
}

import CurlHTTP
import EndpointAPI
import WorkerJSON

/// A client of RunPod's endpoint API (and of any server speaking it, such as a worker in
/// `--local` or load-balancing mode): every route, plus `result(of:within:)`, which waits for a
/// job's final status. Requests and answers are read and written with `EndpointAPI`, the same
/// definitions the server uses. libcurl sends no `Expect: 100-continue` (CurlHTTP turns it off).
public final class EndpointClient: Sendable {
    public let endpoint: Endpoint
    private let http: CurlHTTPClient
    private let ownsHTTP: Bool
    /// One request's time limit (a `/runsync` adds its `wait`).
    public let requestTimeout: Duration
    /// Answers larger than this are refused rather than held.
    static let maxAnswerBytes = 64 << 20

    /// `http` is shared when given (and then not shut down here).
    public init(endpoint: Endpoint, http: CurlHTTPClient? = nil, requestTimeout: Duration = .seconds(30)) {
        self.endpoint = endpoint
        self.http = http ?? CurlHTTPClient(name: "endpoint \(endpoint.description)")
        self.ownsHTTP = http == nil
        self.requestTimeout = requestTimeout
    }

    /// Ends the client's own HTTP thread (a shared client is left alone).
    public func shutdown() async {
        if ownsHTTP { await http.shutdown() }
    }

    /// `POST /run`: queues the job; the answer has its id and status. `timeout` bounds the call
    /// (else the client's `requestTimeout`).
    public func run(_ job: JobRequest, timeout: Duration? = nil, headers: [(name: String, value: String)] = []) async throws -> JobStatusReport {
        try report(try await send("POST", "/run", body: job.json, jobID: nil, timeout: timeout, headers: headers), jobID: nil)
    }

    /// `POST /runsync?wait=`: runs the job and waits up to `wait` (the server clamps it to 1 s to
    /// 5 min; nil leaves its default). Not final when the wait ran out: poll `status` then.
    /// `timeout`, when given, bounds the whole call instead (a caller with a deadline of its own).
    /// `headers` go with the request (after the client's own; a gateway names itself in them).
    public func runSync(
        _ job: JobRequest, wait: Duration? = nil, timeout limit: Duration? = nil, headers: [(name: String, value: String)] = []
    ) async throws -> JobStatusReport {
        let query = wait.map { "?wait=\(Self.milliseconds($0))" } ?? ""
        let timeout = limit ?? requestTimeout + (wait ?? .seconds(90))
        return try report(try await send("POST", "/runsync" + query, body: job.json, jobID: nil, timeout: timeout, headers: headers), jobID: nil)
    }

    /// `GET /status/{id}`.
    public func status(_ id: String) async throws -> JobStatusReport {
        try report(try await send("GET", "/status/" + Self.escaped(id), jobID: id), jobID: id)
    }

    /// `GET /stream/{id}`: the job's status and the chunks streamed since the last call.
    public func stream(_ id: String) async throws -> (status: JobStatus, outputs: [JSONValue]) {
        let answer = try await send("GET", "/stream/" + Self.escaped(id), jobID: id)
        guard let raw = answer["status"]?.stringValue, let status = JobStatus(rawValue: raw) else {
            throw EndpointClientError.invalidAnswer(endpoint, id, "GET /stream answered without a known status: \(Self.excerpt(answer))")
        }
        let outputs = (answer["stream"]?.arrayValue ?? []).map { $0["output"] ?? $0 }
        return (status, outputs)
    }

    /// `POST /cancel/{id}`.
    @discardableResult
    public func cancel(_ id: String) async throws -> JobStatusReport {
        try report(try await send("POST", "/cancel/" + Self.escaped(id), jobID: id), jobID: id)
    }

    /// `POST /retry/{id}`: runs a FAILED or TIMED_OUT job again under the same id.
    public func retry(_ id: String) async throws -> JobStatusReport {
        try report(try await send("POST", "/retry/" + Self.escaped(id), jobID: id), jobID: id)
    }

    /// `GET /health`: the endpoint's job and worker counts, as it answers them.
    public func health(timeout: Duration? = nil) async throws -> JSONValue {
        try await send("GET", "/health", jobID: nil, timeout: timeout)
    }

    /// `POST /purge-queue`: drops the jobs still queued.
    public func purgeQueue() async throws -> JSONValue {
        try await send("POST", "/purge-queue", jobID: nil)
    }

    // MARK: The wire

    func send(
        _ method: String, _ path: String, body: JSONValue? = nil, jobID: String?, timeout: Duration? = nil,
        headers extra: [(name: String, value: String)] = []
    ) async throws -> JSONValue {
        var headers: [(name: String, value: String)] = [("Accept", "application/json")]
        if let key = endpoint.apiKey { headers.append(("Authorization", "Bearer \(key)")) }
        headers += extra
        var request: HTTPClientRequest
        do {
            request = body == nil
                ? HTTPClientRequest(method: method, url: endpoint.baseURL + path, headers: headers, timeout: timeout ?? requestTimeout)
                : try .json(method, url: endpoint.baseURL + path, body: body!, headers: headers, timeout: timeout ?? requestTimeout)
        } catch {
            throw EndpointClientError.invalidAnswer(endpoint, jobID, "\(method) \(path): the job cannot be encoded as JSON: \(error)")
        }
        request.maxResponseBytes = Self.maxAnswerBytes
        let response: HTTPClientResponse
        do {
            response = try await http.execute(request)
        } catch let error as HTTPClientError {
            if error.isCancellation { throw CancellationError() }
            throw EndpointClientError.transport(endpoint, jobID, "\(method) \(path) failed: \(error.reason)", notSent: error.isConnectFailure)
        }
        let answer = try? JSONValue.parse(response.body)
        guard (200..<300).contains(response.status) else {
            let message = answer?["error"].flatMap { $0.stringValue ?? (try? $0.jsonString()) } ?? Self.excerpt(response.body)
            throw EndpointClientError.http(endpoint, jobID, status: response.status, "\(method) \(path) answered HTTP \(response.status): \(message)")
        }
        guard let answer else {
            throw EndpointClientError.invalidAnswer(endpoint, jobID, "\(method) \(path) answered with something that is not JSON: \(Self.excerpt(response.body))")
        }
        return answer
    }

    private func report(_ answer: JSONValue, jobID: String?) throws -> JobStatusReport {
        do {
            return try JobStatusReport(json: answer)
        } catch {
            throw EndpointClientError.invalidAnswer(endpoint, jobID, "the answer is not a job status: \(error)")
        }
    }

    static func milliseconds(_ duration: Duration) -> Int64 {
        let (seconds, attoseconds) = duration.components
        return max(0, seconds * 1000 + attoseconds / 1_000_000_000_000_000)
    }

    /// A job id in a path: ids are the server's, but a stray `/` or `?` must not change the route.
    static func escaped(_ id: String) -> String { PercentEncoding.encode(id) }

    static func excerpt(_ body: [UInt8]) -> String {
        body.isEmpty ? "an empty body" : String(decoding: body.prefix(300), as: UTF8.self)
    }

    static func excerpt(_ value: JSONValue) -> String {
        String(((try? value.jsonString()) ?? "?").prefix(300))
    }
}

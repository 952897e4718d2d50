import CurlHTTP
import WorkerJSON
import WorkerRuntime

/// Context7's public API (v2) over libcurl, with its answers sorted out: retries for 429 (after
/// `Retry-After`), 202 (`library_not_finalized`), 5xx and network errors, each bounded by the
/// job's deadline; 301 and 404 handed back for the caller to act on; everything else an error
/// naming the status, Context7's code and its message. Redirects are never followed by curl.
/// When retrying stops, the error names what Context7 last answered (`Context7Setback`).
struct Context7Upstream: Sendable {
    enum Answer: Equatable {
        case ok(body: [UInt8])
        /// 404: `library_not_found`, `no_snippets_found`, `no_libraries_found`, `tag_not_found`.
        case notFound(code: String)
        /// 301 `library_redirected`: the library's new id.
        case redirected(to: String)
    }

    let configuration: Context7Configuration
    let http: CurlHTTPClient
    /// Retries after 429 answers: 5, so at most 6 calls in all.
    static let maxRateLimitWaits = 5

    /// `GET {base}{path}?{query}`, retried as the answer calls for.
    func get(_ path: String, query: [(String, String)], context: JobContext) async throws -> Answer {
        let url = configuration.baseURL + path + "?" + query.map { "\(PercentEncoding.encode($0.0))=\(PercentEncoding.encode($0.1))" }.joined(separator: "&")
        var tries = 0
        var failures = 0
        var notFinalized = 0
        var rateLimited = 0
        // What the last try answered, named by the error if no further try can be made.
        var setback: Context7Setback?
        while true {
            try context.checkCancellation()
            let timeout = try timeLeft(context, for: path, after: setback, tries: tries)
            var request = HTTPClientRequest(url: url, headers: headers, timeout: min(configuration.requestTimeout, timeout))
            request.maxResponseBytes = configuration.maxResponseBytes
            tries += 1
            let response: HTTPClientResponse
            do {
                response = try await http.execute(request)
            } catch let error as HTTPClientError {
                if error.isCancellation { throw CancellationError() }
                if error.isResponseTooLarge { throw tooLarge(path) }
                failures += 1
                let current = Context7Setback.unreachable(error)
                setback = current
                try await retry(
                    after: current, count: failures, allowed: configuration.retries, wait: backoff(failures), tries: tries, context: context)
                continue
            }
            // The body of a 200 is the answer: only other statuses carry Context7's error fields.
            if response.status == 200 { return .ok(body: response.body) }
            let (code, message) = Self.errorFields(response.body)
            let askedWait = response.header("Retry-After").map { Self.retryAfter($0) }
            switch response.status {
            case 301:
                guard let target = (try? JSONValue.parse(response.body))?["redirectUrl"]?.stringValue else {
                    throw Context7Error.upstream("Context7 answered \(path) with 301 but no redirectUrl in its body")
                }
                return .redirected(to: target)
            case 404:
                return .notFound(code: code ?? "not_found")
            case 202:
                notFinalized += 1
                let current = Context7Setback.notFinalized
                setback = current
                let wait = max(backoff(notFinalized), askedWait ?? .zero)
                try await retry(
                    after: current, count: notFinalized, allowed: configuration.notFinalizedRetries, wait: wait, tries: tries, context: context)
            case 429:
                rateLimited += 1
                // Retry-After (1 s without one), but never less than the backoff step: a
                // `Retry-After: 0` must not turn into a burst of calls.
                let wait = max(askedWait ?? .seconds(1), backoff(rateLimited))
                let current = Context7Setback.rateLimited(path: path, retryAfter: askedWait)
                setback = current
                try await retry(
                    after: current, count: rateLimited, allowed: Self.maxRateLimitWaits, wait: wait, tries: tries, context: context)
            case 401:
                throw Context7Error.upstream(
                    "Context7 refused the API key (\(code ?? "invalid_api_key"): \(message ?? "unauthorized")): set CONTEXT7_API_KEY to a valid key (ctx7sk-...), or unset it to call anonymously at lower limits")
            case 500...599:
                failures += 1
                let current = Context7Setback.serverError(status: response.status, code: code, message: message)
                setback = current
                let wait = max(backoff(failures), askedWait ?? .zero)
                try await retry(
                    after: current, count: failures, allowed: configuration.retries, wait: wait, tries: tries, context: context)
            default:
                throw Context7Error.upstream(
                    "Context7 answered \(path) with HTTP \(response.status) (\(code ?? "no code"): \(message ?? Self.excerpt(response.body)))")
            }
        }
    }

    private var headers: [(name: String, value: String)] {
        var headers: [(name: String, value: String)] = [("Accept", "application/json, text/plain")]
        if let key = configuration.apiKey { headers.append(("Authorization", "Bearer \(key)")) }
        return headers
    }

    /// Sleeps `wait` before retry number `count`, or throws the setback's error: when more than
    /// `allowed` retries would be needed, or when the wait would end past the job's deadline.
    private func retry(
        after setback: Context7Setback, count: Int, allowed: Int, wait: Duration, tries: Int, context: JobContext
    ) async throws {
        guard count <= allowed else {
            throw setback.error(.retriesUsedUp(tries: tries, retries: allowed), configuration: configuration)
        }
        if let remaining = context.remainingTime, remaining <= wait {
            throw setback.error(.deadline(tries: tries, wait: wait), configuration: configuration)
        }
        try await Task.sleep(for: wait)
    }

    /// Exponential, doubling from `backoffBase`, with full jitter in its upper half.
    private func backoff(_ attempt: Int) -> Duration {
        let step = configuration.backoffBase * (1 << min(attempt - 1, 6))
        return step * Double.random(in: 0.5...1.0)
    }

    private func timeLeft(_ context: JobContext, for path: String, after setback: Context7Setback?, tries: Int) throws -> Duration {
        guard let remaining = context.remainingTime else { return configuration.requestTimeout }
        guard remaining > .milliseconds(10) else {
            if let setback { throw setback.error(.deadline(tries: tries, wait: nil), configuration: configuration) }
            throw Context7Error.upstream("no time left before the job's deadline to call Context7 \(path)")
        }
        return remaining
    }

    private func tooLarge(_ path: String) -> Context7Error {
        let limit = Self.describe(bytes: configuration.maxResponseBytes)
        return Context7Error.upstream(
            "Context7 (\(configuration.baseURL)) answered \(path) with more than \(limit), the most this handler takes in one answer; "
                + "the transfer was stopped there. Ask a narrower query")
    }

    /// `Retry-After` in seconds (an HTTP date is not worth parsing here: 1 s then).
    static func retryAfter(_ header: String?) -> Duration {
        guard let header, let seconds = Double(header.trimmingWhitespace), seconds >= 0 else { return .seconds(1) }
        return .milliseconds(Int64(min(seconds, 3600) * 1000))
    }

    /// Context7's error body, `{"error": code, "message": text}`, when it is one.
    static func errorFields(_ body: [UInt8]) -> (code: String?, message: String?) {
        guard body.first == UInt8(ascii: "{"), let parsed = try? JSONValue.parse(body) else { return (nil, nil) }
        return (parsed["error"]?.stringValue, parsed["message"]?.stringValue)
    }

    static func excerpt(_ body: [UInt8]) -> String {
        let text = String(decoding: body.prefix(200), as: UTF8.self)
        return text.isEmpty ? "an empty body" : "body: \(text)"
    }

    /// "4 MB", "256 KB" or "1000 bytes".
    static func describe(bytes: Int) -> String {
        if bytes >= 1 << 20, bytes % (1 << 20) == 0 { return "\(bytes >> 20) MB" }
        if bytes >= 1 << 10, bytes % (1 << 10) == 0 { return "\(bytes >> 10) KB" }
        return "\(bytes) bytes"
    }
}

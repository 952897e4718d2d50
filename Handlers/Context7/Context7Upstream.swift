import CurlHTTP
import WorkerJSON
import WorkerRuntime

/// Context7's public API (v2) over libcurl, with its answers sorted out: retries for 429 (after
/// `Retry-After`), 202 (`library_not_finalized`), 5xx and network errors, each bounded by the
/// job's deadline; 301 and 404 handed back for the caller to act on; everything else an error
/// naming the status, Context7's code and its message. Redirects are never followed by curl.
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
    /// Documentation answers are text; a body beyond this is refused rather than held.
    static let maxResponseBytes = 32 << 20
    /// 429 answers waited out before giving up.
    static let maxRateLimitWaits = 5

    /// `GET {base}{path}?{query}`, retried as the answer calls for.
    func get(_ path: String, query: [(String, String)], context: JobContext) async throws -> Answer {
        let url = configuration.baseURL + path + "?" + query.map { "\(PercentEncoding.encode($0.0))=\(PercentEncoding.encode($0.1))" }.joined(separator: "&")
        var failures = 0
        var notFinalized = 0
        var rateLimited = 0
        while true {
            try context.checkCancellation()
            let timeout = try timeLeft(context, for: path)
            var request = HTTPClientRequest(url: url, headers: headers, timeout: min(configuration.requestTimeout, timeout))
            request.maxResponseBytes = Self.maxResponseBytes
            let response: HTTPClientResponse
            do {
                response = try await http.execute(request)
            } catch let error as HTTPClientError {
                if error.isCancellation { throw CancellationError() }
                if error.isResponseTooLarge {
                    throw Context7Error.upstream("Context7 answered \(path) with more than \(Self.maxResponseBytes >> 20) MB; ask a narrower query")
                }
                failures += 1
                guard failures <= configuration.retries else {
                    throw Context7Error.upstream(
                        "Context7 (\(configuration.baseURL)) could not be reached after \(failures) tries: \(error). Check CONTEXT7_BASE_URL and the network")
                }
                try await pause(backoff(failures), context: context, path: path)
                continue
            }
            let (code, message) = Self.errorFields(response.body)
            switch response.status {
            case 200:
                return .ok(body: response.body)
            case 301:
                guard let target = (try? JSONValue.parse(response.body))?["redirectUrl"]?.stringValue else {
                    throw Context7Error.upstream("Context7 answered \(path) with 301 but no redirectUrl in its body")
                }
                return .redirected(to: target)
            case 404:
                return .notFound(code: code ?? "not_found")
            case 202:
                notFinalized += 1
                guard notFinalized <= configuration.notFinalizedRetries else {
                    throw Context7Error.upstream(
                        "Context7 is still processing this library (library_not_finalized) after \(notFinalized) tries; try again in a few minutes")
                }
                try await pause(backoff(notFinalized), context: context, path: path, giveUp: "Context7 is still processing this library (library_not_finalized); try again in a few minutes")
            case 429:
                rateLimited += 1
                let wait = Self.retryAfter(response.header("Retry-After"))
                guard rateLimited <= Self.maxRateLimitWaits, context.remainingTime.map({ wait < $0 }) ?? true else {
                    throw Context7Error.upstream(
                        "Context7's rate limit was reached (rate_limit_exceeded) and its Retry-After (\(wait)) is past this job's deadline; "
                            + (configuration.apiKey == nil ? "set CONTEXT7_API_KEY for higher limits" : "slow down, or raise the plan's limits"))
                }
                try await Task.sleep(for: wait)
            case 401:
                throw Context7Error.upstream(
                    "Context7 refused the API key (\(code ?? "invalid_api_key"): \(message ?? "unauthorized")): set CONTEXT7_API_KEY to a valid key (ctx7sk-...), or unset it to call anonymously at lower limits")
            case 500...599:
                failures += 1
                guard failures <= configuration.retries else {
                    throw Context7Error.upstream("Context7 failed with HTTP \(response.status) (\(code ?? "no code"): \(message ?? "no message")) after \(failures) tries")
                }
                try await pause(backoff(failures), context: context, path: path)
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

    /// Exponential, doubling from `backoffBase`, with full jitter in its upper half.
    private func backoff(_ attempt: Int) -> Duration {
        let step = configuration.backoffBase * (1 << min(attempt - 1, 6))
        return step * Double.random(in: 0.5...1.0)
    }

    private func timeLeft(_ context: JobContext, for path: String) throws -> Duration {
        guard let remaining = context.remainingTime else { return configuration.requestTimeout }
        guard remaining > .milliseconds(10) else {
            throw Context7Error.upstream("no time left before the job's deadline to call Context7 \(path)")
        }
        return remaining
    }

    /// Sleeps `delay` unless the deadline comes first, in which case the call gives up.
    private func pause(_ delay: Duration, context: JobContext, path: String, giveUp: String? = nil) async throws {
        if let remaining = context.remainingTime, remaining <= delay {
            throw Context7Error.upstream(giveUp ?? "Context7 \(path) kept failing until the job's deadline")
        }
        try await Task.sleep(for: delay)
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
}

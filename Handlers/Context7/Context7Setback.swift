import CurlHTTP

/// An answer from Context7 that is retried: kept so that, when retrying stops (its retries used
/// up, or the job's deadline before the next try), the error names what Context7 really answered
/// and what to do about it, never a reason of its own.
enum Context7Setback: Sendable {
    /// A network error, a timeout or a body cut off mid-transfer.
    case unreachable(HTTPClientError)
    /// 5xx (`internal_error`, `search_failed`, `timeout`).
    case serverError(status: Int, code: String?, message: String?)
    /// 202 `library_not_finalized`.
    case notFinalized
    /// 429 `rate_limit_exceeded`, with its `Retry-After` when it sent one.
    case rateLimited(path: String, retryAfter: Duration?)

    /// Why no further try is made.
    enum Stop {
        /// `tries` calls made, and no more than `retries` retries are allowed for this answer.
        case retriesUsedUp(tries: Int, retries: Int)
        /// The next try (after `wait`, when known) would start past the job's deadline.
        case deadline(tries: Int, wait: Duration?)
    }

    func error(_ stop: Stop, configuration: Context7Configuration) -> Context7Error {
        let what: String
        let advice: String
        switch self {
        case .unreachable(let error):
            what = "Context7 (\(configuration.baseURL)) could not be reached: \(error)"
            advice = "check CONTEXT7_BASE_URL and the network"
        case .serverError(let status, let code, let message):
            what = "Context7 failed with HTTP \(status) (\(code ?? "no code"): \(message ?? "no message"))"
            advice = "Context7 is having trouble; try again later"
        case .notFinalized:
            what = "Context7 is still processing this library (202 library_not_finalized)"
            advice = "try again in a few minutes"
        case .rateLimited(let path, let retryAfter):
            what = "Context7 rate limited \(path) (429 rate_limit_exceeded" + (retryAfter.map { ", Retry-After \(Self.seconds($0))" } ?? "") + ")"
            advice = configuration.apiKey == nil ? "set CONTEXT7_API_KEY for higher limits" : "slow down, or raise the plan's limits"
        }
        switch stop {
        case .retriesUsedUp(let tries, let retries):
            let made = Self.count(tries, "try", "tries")
            return .upstream("\(what); gave up after \(made) (\(Self.count(retries, "retry", "retries")) allowed): \(advice)")
        case .deadline(let tries, let wait):
            let next =
                wait.map { "the next try, in \(Self.seconds($0)), would start past this job's deadline" }
                ?? "no time is left before this job's deadline"
            return .upstream("\(what); \(next), after \(Self.count(tries, "try", "tries")): \(advice)")
        }
    }

    private static func count(_ number: Int, _ one: String, _ many: String) -> String {
        "\(number) \(number == 1 ? one : many)"
    }

    /// "0 s", "1 s", "0.25 s".
    static func seconds(_ duration: Duration) -> String {
        let (seconds, attoseconds) = duration.components
        let milliseconds = seconds * 1000 + attoseconds / 1_000_000_000_000_000
        return milliseconds % 1000 == 0 ? "\(milliseconds / 1000) s" : "\(Double(milliseconds) / 1000) s"
    }
}

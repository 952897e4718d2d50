import RedisClient
import WorkerCache
import WorkerRuntime

/// The context7 handler's settings, read once from the environment.
struct Context7Configuration: Sendable {
    /// `CONTEXT7_BASE_URL` (default `https://context7.com/api`), without a trailing slash.
    var baseURL = "https://context7.com/api"
    /// `CONTEXT7_API_KEY`: sent as a bearer token; without it Context7 answers at lower limits.
    var apiKey: String?
    /// `CONTEXT7_TIMEOUT` (seconds, default 60, as Context7's own MCP server): one upstream request.
    var requestTimeout: Duration = .seconds(60)
    /// Retries after 5xx answers and network errors (`CONTEXT7_RETRIES`, default 3).
    var retries = 3
    /// The first backoff step; later ones double, each jittered.
    var backoffBase: Duration = .milliseconds(250)
    /// `library_not_finalized` answers waited out (within the job's deadline) before giving up.
    var notFinalizedRetries = 5
    /// The response cache (`CACHE_TTL`, `CACHE_NEGATIVE_TTL`, `CACHE_MAX_BYTES`).
    var cache = ResponseCacheConfiguration()
    /// `REDIS_URL` and friends: the cache and rate limits go to Redis when set.
    var redis: RedisConfiguration?

    static func fromEnvironment(_ env: [String: String]) throws(ConfigurationError) -> Context7Configuration {
        func value(_ name: String) -> String? {
            guard let raw = env[name], !raw.isEmpty else { return nil }
            return raw
        }
        var configuration = Context7Configuration()
        if var base = value("CONTEXT7_BASE_URL") {
            guard base.hasPrefix("http://") || base.hasPrefix("https://"), !base.contains(" ") else {
                throw .invalidValue("CONTEXT7_BASE_URL", base, expected: "an http:// or https:// URL such as https://context7.com/api")
            }
            while base.hasSuffix("/") { base.removeLast() }
            configuration.baseURL = base
        }
        configuration.apiKey = value("CONTEXT7_API_KEY")
        if let raw = value("CONTEXT7_TIMEOUT") {
            guard let seconds = Double(raw), seconds > 0, seconds <= 3600 else {
                throw .invalidValue("CONTEXT7_TIMEOUT", raw, expected: "seconds, more than 0 and at most 3600")
            }
            configuration.requestTimeout = .milliseconds(Int64(seconds * 1000))
        }
        if let raw = value("CONTEXT7_RETRIES") {
            guard let retries = Int(raw), (0...10).contains(retries) else {
                throw .invalidValue("CONTEXT7_RETRIES", raw, expected: "a whole number from 0 to 10")
            }
            configuration.retries = retries
        }
        configuration.cache = try ResponseCacheConfiguration.fromEnvironment(env)
        configuration.redis = try RedisConfiguration.fromWorkerEnvironment(env)
        return configuration
    }
}

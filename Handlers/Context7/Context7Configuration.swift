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
    /// Retries after `library_not_finalized` (202) answers, within the job's deadline: 5, so at
    /// most 6 calls in all before giving up.
    var notFinalizedRetries = 5
    /// The largest answer taken from Context7, enforced while it arrives: a declared
    /// `Content-Length` over it is refused before the body, and a transfer is stopped as soon as
    /// it passes it. 4 MB is a million tokens at 4 bytes each (the largest `tokens` budget);
    /// Context7's answers to one question are tens of KB.
    var maxResponseBytes = 4 << 20
    /// The response cache (`CACHE_TTL`, `CACHE_NEGATIVE_TTL`, `CACHE_MAX_BYTES`).
    var cache = ResponseCacheConfiguration()
    /// `REDIS_URL` and friends: the cache and rate limits go to Redis when set.
    var redis: RedisConfiguration?

    static func fromEnvironment(_ env: [String: String]) throws(ConfigurationError) -> Context7Configuration {
        let env = EnvironmentReader(env)
        var configuration = Context7Configuration()
        if let base = try env.baseURL("CONTEXT7_BASE_URL", example: "https://context7.com/api") { configuration.baseURL = base }
        configuration.apiKey = env.string("CONTEXT7_API_KEY")
        if let timeout = try env.seconds("CONTEXT7_TIMEOUT", in: 0.001...3600) { configuration.requestTimeout = timeout }
        if let retries = try env.whole("CONTEXT7_RETRIES", in: 0...10) { configuration.retries = retries }
        configuration.cache = try ResponseCacheConfiguration.fromEnvironment(env.environment)
        configuration.redis = try RedisConfiguration.fromWorkerEnvironment(env.environment)
        return configuration
    }
}

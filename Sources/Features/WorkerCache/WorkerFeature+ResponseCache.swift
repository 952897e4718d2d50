import Logging
import RedisClient
import WorkerRuntime

extension WorkerFeature {
    /// Caches the handler's answers by job input: in this process, bounded in bytes, and in Redis
    /// when `redis` is given (shared by every worker, kept across restarts; the in-process copy
    /// then saves the round trip on repeated hits and expires with Redis's). Identical jobs that
    /// miss at the same time run once. A cache failure is logged and the job runs uncached.
    /// `handlerName` keys the entries (workers of one handler share them).
    public static func responseCache(
        _ configuration: ResponseCacheConfiguration, redis: RedisClient? = nil, handlerName: String,
        policy: ResponseCachePolicy = ResponseCachePolicy()
    ) -> WorkerFeature {
        let cache = ResponseCache(
            near: NearCache(maxBytes: configuration.maxBytes), backend: redis.map { RedisCacheBackend(redis: $0) },
            configuration: configuration, handlerName: handlerName, policy: policy)
        return WorkerFeature(
            name: "response cache",
            decorate: { handler, context in
                guard configuration.isEnabled else { return handler }
                context.logger.info("Response cache: \(cache.description), TTL \(configuration.ttl)")
                return CachingHandler(
                    inner: handler, cache: cache,
                    hits: context.metrics.counter("worker_cache_lookups_total", dimensions: [("result", "hit")]),
                    misses: context.metrics.counter("worker_cache_lookups_total", dimensions: [("result", "miss")]),
                    shared: context.metrics.counter("worker_cache_lookups_total", dimensions: [("result", "shared")]),
                    failures: context.metrics.counter("worker_cache_lookups_total", dimensions: [("result", "error")]))
            })
    }

    /// Rate limits (`RATE_LIMIT_*`) counted in Redis, so that worker processes sharing the server
    /// share each client's budget. Without this feature each process counts on its own; while
    /// Redis does not answer, each process counts on its own too (checked again every few seconds).
    public static func sharedRateLimits(redis: RedisClient, logger: Logger? = nil) -> WorkerFeature {
        WorkerFeature(
            name: "shared rate limits", contributions: [RedisRateLimitStore(redis: redis, logger: logger) as any RateLimitStore])
    }
}

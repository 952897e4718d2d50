import Logging
import RedisClient
import WorkerRuntime

extension WorkerFeature {
    /// Caches the handler's answers by job input: in Redis when `redis` is given (shared by every
    /// worker, kept across restarts), else in this process, bounded in bytes. Identical jobs that
    /// miss at the same time run once. A cache failure is logged and the job runs uncached.
    /// `handlerName` keys the entries (workers of one handler share them).
    public static func responseCache(
        _ configuration: ResponseCacheConfiguration, redis: RedisClient? = nil, handlerName: String,
        policy: ResponseCachePolicy = ResponseCachePolicy()
    ) -> WorkerFeature {
        let backend: any ResponseCacheBackend =
            redis.map { RedisCacheBackend(redis: $0) } ?? MemoryCacheBackend(maxBytes: configuration.maxBytes)
        let cache = ResponseCache(backend: backend, configuration: configuration, handlerName: handlerName, policy: policy)
        return WorkerFeature(
            name: "response cache",
            decorate: { handler, context in
                guard configuration.isEnabled else { return handler }
                context.logger.info("Response cache: \(backend.name), TTL \(configuration.ttl)")
                return CachingHandler(
                    inner: handler, cache: cache,
                    hits: context.metrics.counter("worker_cache_lookups_total", dimensions: [("result", "hit")]),
                    misses: context.metrics.counter("worker_cache_lookups_total", dimensions: [("result", "miss")]),
                    shared: context.metrics.counter("worker_cache_lookups_total", dimensions: [("result", "shared")]),
                    failures: context.metrics.counter("worker_cache_lookups_total", dimensions: [("result", "error")]))
            })
    }

    /// Rate limits (`RATE_LIMIT_*`) counted in Redis, so that worker processes sharing the server
    /// share each client's budget. Without this feature each process counts on its own.
    public static func sharedRateLimits(redis: RedisClient) -> WorkerFeature {
        WorkerFeature(name: "shared rate limits", contributions: [RedisRateLimitStore(redis: redis) as any RateLimitStore])
    }
}

import RedisClient
import WorkerRuntime

/// Request counts in Redis, so every worker process on one server shares each client's budget:
/// one `EVAL` counts and starts the window atomically (INCR, PEXPIRE on the first request, PTTL).
package struct RedisRateLimitStore: RateLimitStore {
    let redis: RedisClient

    package init(redis: RedisClient) {
        self.redis = redis
    }

    package var name: String { "redis \(redis.configuration.server)" }

    static let script = """
        local count = redis.call('INCR', KEYS[1])
        if count == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
        local ttl = redis.call('PTTL', KEYS[1])
        if ttl < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]); ttl = tonumber(ARGV[1]) end
        return {count, ttl}
        """

    package func hit(_ key: String, window: Duration) async throws -> RateLimitCount {
        let (seconds, attoseconds) = window.components
        let milliseconds = max(1, Int(seconds) * 1000 + Int(attoseconds / 1_000_000_000_000_000))
        let reply = try await redis.eval(Self.script, keys: ["worker-ratelimit:" + key], arguments: [RedisArgument(milliseconds)])
        guard case .array(let values) = reply, values.count == 2, let count = values[0].integer, let ttl = values[1].integer else {
            throw RedisError.unexpectedReply(redis.configuration.server, "EVAL (rate limit)", reply)
        }
        return RateLimitCount(count: Int(count), resetIn: .milliseconds(ttl))
    }
}

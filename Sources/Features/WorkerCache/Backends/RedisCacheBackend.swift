import RedisClient

/// Answers cached in Redis (`SET key value PX ttl`): shared by every worker on the server and
/// kept across restarts. After a failure the cache is skipped for `pause`, then one probe (a
/// `GET`, off the request path) decides whether Redis is back, so an outage or a stalled server
/// costs each job nothing instead of a timeout.
package final class RedisCacheBackend: ResponseCacheBackend {
    private let redis: RedisClient
    private let pause: Duration
    private let availability: RedisAvailability

    package init(redis: RedisClient, pause: Duration = .seconds(5)) {
        self.redis = redis
        self.pause = pause
        self.availability = RedisAvailability.shared(for: redis)
    }

    package var name: String { "redis \(redis.configuration.server)" }

    /// Whether the cache skips Redis now (after a failure, until a probe finds it back).
    package var isSkippingRedis: Bool { availability.isSkipping }

    /// `GET` and `PTTL` in one round trip, so the near cache keeps the entry no longer than Redis.
    package func get(_ key: String) async throws -> (value: [UInt8], timeToLive: Duration?)? {
        try checkAvailable()
        let replies = try await guarded { try await redis.pipeline([["GET", RedisArgument(key)], ["PTTL", RedisArgument(key)]]) }
        guard case .bulk(let value) = replies[0] else { return nil }
        let milliseconds = replies[1].integer ?? -1
        return (value, milliseconds > 0 ? .milliseconds(milliseconds) : nil)
    }

    package func set(_ key: String, _ value: [UInt8], ttl: Duration) async throws {
        try checkAvailable()
        _ = try await guarded { try await redis.set(key, value, expiresIn: ttl) }
    }

    private func checkAvailable() throws {
        switch availability.route() {
        case .redis: return
        case .local: break
        case .localAndProbe: Task { await probe() }
        }
        throw CacheUnavailable(message: "Redis \(redis.configuration.server) failed recently; the cache is skipped until it answers again")
    }

    private func probe() async {
        do {
            _ = try await redis.get("worker-cache-probe")
            availability.recovered()
        } catch {
            availability.probeEnded(pause: pause)
        }
    }

    private func guarded<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as RedisError {
            // Any failure, not only a lost connection: a wrong password or database, or a server
            // that does not speak RESP, fails every call the same way, and retrying each one would
            // open a connection and log a line per job.
            availability.failed(pause: pause)
            throw error
        }
    }
}

/// The backend is skipped for a while after an outage.
package struct CacheUnavailable: Error, CustomStringConvertible {
    package let message: String
    package var description: String { message }
}

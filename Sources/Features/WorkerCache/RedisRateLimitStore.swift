import Logging
import RedisClient
import Synchronization
import WorkerRuntime

/// Request counts in Redis, so every worker process on one server shares each client's budget:
/// one `EVAL` counts and starts the window atomically (INCR, PEXPIRE on the first request, PTTL).
///
/// When Redis stops answering (down, stalled, unreachable) the store counts in this process for
/// `pause`, as docs/failure-model.md promises: a request never waits on a server that just failed.
/// Then one probe (the counting script itself on a key of its own, off the request path: a
/// server that answers `PING` but stalls scripts is not back) decides whether Redis is back;
/// until it answers, requests go on counting here. One warning per outage and one line when it
/// ends, whatever the request rate (an outage once logged a line per request).
package final class RedisRateLimitStore: RateLimitStore {
    let redis: RedisClient
    private let local: InProcessRateLimitStore
    private let pause: Duration
    private let givenLogger: Logger?
    /// Made when a line is logged (rarely: at an outage's start and end), so that it has the log
    /// format the runtime set up after this store was made.
    private var logger: Logger { givenLogger ?? Logger(label: "rate-limits") }
    private let availability: RedisAvailability

    package init(redis: RedisClient, pause: Duration = .seconds(5), logger: Logger? = nil) {
        self.redis = redis
        self.pause = pause
        self.givenLogger = logger
        self.local = InProcessRateLimitStore()
        self.availability = RedisAvailability.shared(for: redis)
    }

    package var name: String { "redis \(redis.configuration.server)" }

    /// Whether Redis is being skipped now (for tests and `/health`-style reporting).
    package var isSkippingRedis: Bool { availability.isSkipping }

    static let script = """
        local count = redis.call('INCR', KEYS[1])
        if count == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
        local ttl = redis.call('PTTL', KEYS[1])
        if ttl < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]); ttl = tonumber(ARGV[1]) end
        return {count, ttl}
        """

    package func hit(_ key: String, window: Duration) async throws -> RateLimitCount {
        switch availability.route() {
        case .redis:
            break
        case .local:
            return try await local.hit(key, window: window)
        case .localAndProbe:
            Task { await probe() }
            return try await local.hit(key, window: window)
        }
        do {
            return try await count(key, window: window)
        } catch let error as RedisError {
            // Any failure (see RedisCacheBackend.guarded): a wrong password fails every call alike.
            markDown(error)
            return try await local.hit(key, window: window)
        }
    }

    private func count(_ key: String, window: Duration) async throws -> RateLimitCount {
        let (seconds, attoseconds) = window.components
        let milliseconds = max(1, Int(seconds) * 1000 + Int(attoseconds / 1_000_000_000_000_000))
        let reply = try await redis.eval(Self.script, keys: ["worker-ratelimit:" + key], arguments: [RedisArgument(milliseconds)])
        guard case .array(let values) = reply, values.count == 2, let count = values[0].integer, let ttl = values[1].integer else {
            throw RedisError.unexpectedReply(redis.configuration.server, "EVAL (rate limit)", reply)
        }
        return RateLimitCount(count: Int(count), resetIn: .milliseconds(ttl))
    }

    private func markDown(_ error: RedisError) {
        let first = availability.failed(pause: pause)
        if first {
            logger.warning(
                "Rate limits: \(name) failed (\(error)); counting in this process until it answers again (checked every \(pause))")
        } else {
            logger.debug("Rate limits: \(name) still failing (\(error))")
        }
    }

    private func probe() async {
        do {
            _ = try await count("probe", window: .milliseconds(1))
            availability.recovered()
            logger.notice("Rate limits: \(name) answers again; counting there")
        } catch let error as RedisError {
            markDown(error)
        } catch {
            availability.probeEnded(pause: pause)
        }
    }
}

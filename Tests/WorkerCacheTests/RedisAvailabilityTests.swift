import Logging
import RedisClient
import Testing
import TestSupport
import WorkerRuntime

@testable import WorkerCache

/// Failures that are not lost connections (a wrong password, a database that does not exist) fail
/// every call alike: the cache and the rate limits must treat them as an outage too, and share it,
/// so a request pays one failure per outage and Redis sees no connection per job.
@Suite("Redis failures of any kind: one shared outage", .tags(.servers), .pass(.servers))
struct RedisAvailabilityTests {
    @Test("a wrong password: after the first failure, 200 requests open no connection and log one warning")
    func wrongPassword() async throws {
        let server = try RedisTestServer(password: "right")
        defer { server.stop() }
        let redis = try RedisClient(configuration: try RedisConfiguration(url: "redis://:wrong@127.0.0.1:\(server.port)"))
        defer { Task { await redis.shutdown() } }
        let logs = LogCollector()
        let limits = RedisRateLimitStore(redis: redis, pause: .seconds(30), logger: logs.logger())
        let cache = RedisCacheBackend(redis: redis, pause: .seconds(30))
        let admin = try RedisClient(configuration: try RedisConfiguration(url: "redis://:right@127.0.0.1:\(server.port)"))
        defer { Task { await admin.shutdown() } }
        func connections() async throws -> Int {
            let text = try await admin.send(["INFO", "stats"]).string ?? ""
            let line = text.split(whereSeparator: \.isNewline).first { $0.hasPrefix("total_connections_received:") }
            return Int(line?.split(separator: ":").last ?? "") ?? -1
        }

        _ = try await limits.hit("run:ip:1", window: .seconds(10))
        #expect(limits.isSkippingRedis && cache.isSkippingRedis, "the outage is shared")
        let before = try await connections()
        for index in 0..<200 {
            #expect(try await limits.hit("run:ip:1", window: .seconds(10)).count == index + 2)
            await #expect(throws: CacheUnavailable.self) { _ = try await cache.get("k\(index)") }
        }
        let after = try await connections()
        #expect(after - before <= 1, "\(after - before) connections for 200 requests")
        #expect(logs.all.filter { $0.contains("counting in this process") }.count == 1, "\(logs.all)")
    }

    @Test("a database index the server does not have is an outage, not an error per call")
    func wrongDatabase() async throws {
        let server = try RedisTestServer()
        defer { server.stop() }
        let redis = try RedisClient(configuration: try RedisConfiguration(url: "redis://127.0.0.1:\(server.port)/99"))
        defer { Task { await redis.shutdown() } }
        let cache = RedisCacheBackend(redis: redis, pause: .seconds(30))
        await #expect(throws: RedisError.self) { _ = try await cache.get("k") }
        #expect(cache.isSkippingRedis)
        await #expect(throws: CacheUnavailable.self) { _ = try await cache.get("k") }
    }
}

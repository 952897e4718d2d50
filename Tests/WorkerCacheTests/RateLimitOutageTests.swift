import Logging
import RedisClient
import Testing
import TestSupport
import WorkerRuntime

@testable import WorkerCache

/// A Redis that accepts connections and never answers (SIGSTOPped, or a black-holed route): the
/// rate limiter must stop waiting on it after one failure, count here, and say so once.
@Suite("Rate limits while Redis stalls", .defaultPass)
struct RateLimitOutageTests {
    @Test("After one timed-out call, requests count in process at once; one warning per outage")
    func stalledRedis() async throws {
        let server = try ScriptedTCPServer { _ in [] }
        defer { server.stop() }
        var configuration = try RedisConfiguration(url: "redis://127.0.0.1:\(server.port)")
        configuration.commandTimeout = .milliseconds(200)
        configuration.connectTimeout = .milliseconds(200)
        let redis = try RedisClient(configuration: configuration)
        defer { Task { await redis.shutdown() } }
        let logs = LogCollector()
        let store = RedisRateLimitStore(redis: redis, pause: .milliseconds(400), logger: logs.logger())

        let first = try await store.hit("run:ip:1", window: .seconds(10))
        #expect(first.count == 1)
        #expect(store.isSkippingRedis)
        let started = ContinuousClock.now
        for expected in 2...500 {
            #expect(try await store.hit("run:ip:1", window: .seconds(10)).count == expected)
        }
        #expect(ContinuousClock.now - started < .milliseconds(150), "500 requests waited on a stalled Redis")
        // Past the pause one probe goes out (and times out); requests never wait for it.
        try await Task.sleep(for: .milliseconds(450))
        let afterPause = ContinuousClock.now
        for _ in 0..<100 { _ = try await store.hit("run:ip:1", window: .seconds(10)) }
        #expect(ContinuousClock.now - afterPause < .milliseconds(150))
        try await Task.sleep(for: .milliseconds(300))
        #expect(store.isSkippingRedis)
        let warnings = logs.all.filter { $0.contains("counting in this process") }
        #expect(warnings.count == 1, "\(logs.all)")
    }

    @Test("A Redis that answers PING but stalls scripts is not taken for back: requests keep counting here, none waits")
    func pingButStalled() async throws {
        let server = try ScriptedTCPServer { received in
            String(decoding: received, as: UTF8.self).contains("PING") ? Array("+PONG\r\n".utf8) : []
        }
        defer { server.stop() }
        var configuration = try RedisConfiguration(url: "redis://127.0.0.1:\(server.port)")
        configuration.commandTimeout = .milliseconds(200)
        let redis = try RedisClient(configuration: configuration)
        defer { Task { await redis.shutdown() } }
        let store = RedisRateLimitStore(redis: redis, pause: .milliseconds(150), logger: LogCollector().logger())
        _ = try await store.hit("run:ip:2", window: .seconds(10))
        #expect(store.isSkippingRedis)
        // Through several pauses and probes: every request is answered here, at once.
        let end = ContinuousClock.now + .seconds(1)
        var slowest: Duration = .zero
        while ContinuousClock.now < end {
            let started = ContinuousClock.now
            _ = try await store.hit("run:ip:2", window: .seconds(10))
            slowest = max(slowest, ContinuousClock.now - started)
            try await Task.sleep(for: .milliseconds(5))
        }
        #expect(slowest < .milliseconds(100), "a request waited \(slowest) on the stalled server")
        #expect(store.isSkippingRedis)
    }

    @Test("The outage state: skip, one probe after the pause, recovery")
    func outageState() {
        var state = RedisOutage()
        let now = ContinuousClock.now
        #expect(state.route(now: now) == .redis)
        let first = state.failed(until: now + .seconds(5))
        let second = state.failed(until: now + .seconds(5))
        #expect(first && !second)
        #expect(state.route(now: now + .seconds(1)) == .local)
        #expect(state.route(now: now + .seconds(6)) == .localAndProbe)
        #expect(state.route(now: now + .seconds(6)) == .local)
        state.probeEnded(until: now + .seconds(11))
        #expect(state.route(now: now + .seconds(7)) == .local)
        #expect(state.route(now: now + .seconds(12)) == .localAndProbe)
        state.recovered()
        #expect(state.route(now: now + .seconds(12)) == .redis)
    }
}

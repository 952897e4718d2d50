import GatewayCore
import Logging
import RedisClient
import Testing
import TestSupport
import WorkerJSON

@testable import Gateway

/// Gateway replicas sharing breakers and probes through a real redis-server.
@Suite("Gateway replicas share breakers and probes through Redis", .tags(.servers), .pass(.servers))
struct SharedBoardTests {
    static func configuration() throws -> GatewayConfiguration {
        try GatewayConfiguration.parse(
            [
                "upstreams": [["name": "a", "url": "http://127.0.0.1:1/v2/a"], ["name": "b", "url": "http://127.0.0.1:1/v2/b"]],
                "breaker": ["consecutive_failures": 2, "cooldown_seconds": 2],
            ], environment: [:])
    }

    @Test("An opening on one replica keeps the other's calls away until the cooldown or a closing; one probe per interval")
    func sharing() async throws {
        let server = try RedisTestServer()
        defer { server.stop() }
        let redis = try RedisClient(configuration: try RedisConfiguration(url: server.url))
        defer { Task { await redis.shutdown() } }
        let board = RedisBoard(redis: redis, gateway: "test-gateway")
        let configuration = try Self.configuration()
        let one = UpstreamPool(configuration: configuration, board: board)
        let two = UpstreamPool(configuration: configuration, board: board)
        // Replica one sees upstream a fail twice: its breaker opens, and says so on the board.
        for _ in 0..<2 {
            #expect(one.begin(0, fallback: false) == .admitted)
            one.end(0, .retriable("503"))
        }
        try await Task.sleep(for: .milliseconds(200))
        let views = try await board.read(["a", "b"])
        #expect(views[0].open != nil && views[1].open == nil)
        two.shared(views.map { ($0.open, $0.health.flatMap(UpstreamPool.health(from:))) })
        // Replica two, which saw no failure, now keeps away from a: only b is chosen.
        for _ in 0..<20 { #expect(two.choose(tier: "default", excluding: []) == 1) }
        // A closing (a trial that succeeded on replica one) clears it everywhere.
        one.probed(0, UpstreamPool.Health(queued: 0, workers: 1), now: .now + .seconds(3))
        try await Task.sleep(for: .milliseconds(200))
        let after = try await board.read(["a", "b"])
        #expect(after[0].open == nil)
        two.shared(after.map { ($0.open, $0.health.flatMap(UpstreamPool.health(from:))) })
        var chosen = Set<Int>()
        for _ in 0..<40 { chosen.insert(two.choose(tier: "default", excluding: []) ?? -1) }
        #expect(chosen == [0, 1])
        // One replica probes an upstream per interval; the others read its answer.
        #expect(try await board.claimProbe("a", interval: .seconds(5)))
        #expect(try await board.claimProbe("a", interval: .seconds(5)) == false)
        try await board.health("a", ["jobs": ["inQueue": 7], "workers": ["idle": 2, "running": 1]], keep: .seconds(15))
        let probed = try await board.read(["a"])
        #expect(probed[0].health.flatMap(UpstreamPool.health(from:)) == UpstreamPool.Health(queued: 7, workers: 3))
    }

    @Test("Redis killed and restarted: each replica goes on alone, quickly, and shares again once Redis is back")
    func redisRestart() async throws {
        let server = try RedisTestServer()
        defer { server.stop() }
        var settings = try RedisConfiguration(url: server.url)
        settings.commandTimeout = .milliseconds(500)
        let redis = try RedisClient(configuration: settings)
        defer { Task { await redis.shutdown() } }
        let board = RedisBoard(redis: redis, gateway: "restart-gateway")
        // A cooldown long enough that a slow machine still sees the opening shared before it ends.
        let configuration = try GatewayConfiguration.parse(
            [
                "upstreams": [["name": "a", "url": "http://127.0.0.1:1/v2/a"], ["name": "b", "url": "http://127.0.0.1:1/v2/b"]],
                "breaker": ["consecutive_failures": 2, "cooldown_seconds": 20],
            ], environment: [:])
        let one = UpstreamPool(configuration: configuration, board: board)
        let two = UpstreamPool(configuration: configuration, board: board)
        let sync = Task { try await SharedBoardSync(pool: two, board: board, logger: Logger(label: "test")).run() }
        defer { sync.cancel() }
        try await Task.sleep(for: .milliseconds(300))

        server.stop()
        // Redis is gone: replica one's breaker still opens on its own failures (the board's
        // write fails in the background, never in the job's way).
        for _ in 0..<2 {
            #expect(one.begin(0, fallback: false) == .admitted)
            one.end(0, .retriable("503"))
        }
        for _ in 0..<20 { #expect(one.choose(tier: "default", excluding: []) == 1) }
        // Replica two never heard of it: it goes on with both (its own view), and its reads fail.
        try await Task.sleep(for: .milliseconds(1200))
        var chosen = Set<Int>()
        for _ in 0..<40 { chosen.insert(two.choose(tier: "default", excluding: []) ?? -1) }
        #expect(chosen == [0, 1])
        await #expect(throws: (any Error).self) { try await board.read(["a", "b"]) }

        // Redis is back (empty): the next opening reaches replica two through it again.
        try server.start()
        try await eventually(timeout: .seconds(10)) { (try? await board.read(["a", "b"])) != nil }
        for _ in 0..<2 {
            #expect(one.begin(1, fallback: false) == .admitted)
            one.end(1, .retriable("503"))
        }
        try await eventually(timeout: .seconds(5)) { (try? await board.read(["a", "b"]))?[1].open != nil }
        // Two's sync reads every half second: soon it keeps away from b.
        try await eventually(timeout: .seconds(5)) { (0..<20).allSatisfy { _ in two.choose(tier: "default", excluding: []) == 0 } }
    }

    /// Polls `condition` every 50 ms until it holds, or fails the test after `timeout`.
    private func eventually(timeout: Duration, _ condition: () async -> Bool) async throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if await condition() { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        Issue.record("the condition did not hold within \(timeout)")
    }
}

import GatewayCore
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
        try server.start()
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
}

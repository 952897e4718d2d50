import RedisClient
import Synchronization
import Testing
import TestSupport
import WorkerRuntimeTesting

/// Blocking reads on connections of their own (`RedisConnector`), never the pool's.
@Suite(
    "Redis blocking reads on connections of their own", .tags(.servers), .pass(.servers),
    .enabled(if: RedisTestServer.isInstalled, "redis-server is installed by scripts/test.sh"))
struct RedisBlockingConnectionTests {
    @Test("A blocked XREADGROUP returns as soon as another client adds an entry, and empty at its timeout; BLPOP alike")
    func wakesOnArrival() async throws {
        let server = try RedisTestServer()
        let redis = try DedicatedTesting.client(server)
        let connector = try DedicatedTesting.connector(server)
        defer { Task { await redis.shutdown(); connector.shutdown() } }
        let reader = connector.blockingConnection()
        try await redis.xgroupCreate("jobs", group: "workers")

        var started = ContinuousClock.now
        let nothing = try await reader.xreadgroup("jobs", group: "workers", consumer: "w1", block: .milliseconds(300))
        var elapsed = ContinuousClock.now - started
        #expect(nothing.isEmpty)
        #expect(elapsed >= .milliseconds(290) && elapsed < .seconds(2), "returned after \(elapsed)")

        started = ContinuousClock.now
        let waiting = Task { try await reader.xreadgroup("jobs", group: "workers", consumer: "w1", block: .seconds(2)) }
        try await waitUntil("the read to block on the server") { try await DedicatedTesting.info(redis, "clients", "blocked_clients") == 1 }
        let id = try await redis.xadd("jobs", fields: [("job", "a")])
        let entries = try await DedicatedTesting.within(.seconds(5), "the blocked read") { try await waiting.value }
        elapsed = ContinuousClock.now - started
        #expect(entries.map(\.id) == [id])
        #expect(elapsed < .milliseconds(1500), "the read waited \(elapsed) for an entry added at once")

        started = ContinuousClock.now
        #expect(try await reader.blpop(["list"], timeout: .milliseconds(200))?.key == nil)
        #expect(ContinuousClock.now - started >= .milliseconds(190))
        let popping = Task { try await reader.blpop(["other", "list"], timeout: .seconds(2)) }
        try await waitUntil("BLPOP to block") { try await DedicatedTesting.info(redis, "clients", "blocked_clients") == 1 }
        _ = try await redis.send(["RPUSH", "list", "v1"])
        let popped = try #require(try await DedicatedTesting.within(.seconds(5), "the blocked pop") { try await popping.value })
        #expect(popped.key == "list" && popped.value == Array("v1".utf8))

        // An error reply throws and leaves the connection to the next call.
        let error = await #expect(throws: RedisError.self) {
            try await reader.xreadgroup("jobs", group: "nobody", consumer: "w1", block: .milliseconds(100))
        }
        #expect(error?.isServerError == true && error?.reason.hasPrefix("NOGROUP") == true)
        #expect(try await reader.xreadgroup("jobs", group: "workers", consumer: "w1", block: .milliseconds(50)).isEmpty)
    }

    @Test("50 blocked readers leave a pool of 2 alone: GETs go on meanwhile, then each reader gets one entry")
    func manyReadersSmallPool() async throws {
        let server = try RedisTestServer()
        let redis = try DedicatedTesting.client(server) { $0.poolSize = 2; $0.commandTimeout = .seconds(2) }
        let connector = try DedicatedTesting.connector(server)
        defer { Task { await redis.shutdown(); connector.shutdown() } }
        try await redis.xgroupCreate("jobs", group: "workers")
        let readers = (0..<50).map { _ in connector.blockingConnection() }
        let reads = Task {
            try await withThrowingTaskGroup(of: [RedisStreamEntry].self) { group in
                for (index, reader) in readers.enumerated() {
                    group.addTask { try await reader.xreadgroup("jobs", group: "workers", consumer: "w\(index)", count: 1, block: .seconds(20)) }
                }
                return try await group.reduce(into: [[RedisStreamEntry]]()) { $0.append($1) }
            }
        }
        try await waitUntil("50 reads blocked on the server", timeout: .seconds(20)) {
            try await DedicatedTesting.info(redis, "clients", "blocked_clients") == 50
        }
        // The pool is free: each call gets a connection at once, well within its 2 s wait.
        for index in 0..<20 {
            let started = ContinuousClock.now
            try await redis.set("k\(index)", [UInt8(index)])
            #expect(try await redis.get("k\(index)") == [UInt8(index)])
            #expect(ContinuousClock.now - started < .seconds(1))
        }
        #expect(redis.openConnections <= 2)

        var added: Set<String> = []
        for index in 0..<50 { added.insert(try await redis.xadd("jobs", fields: [("n", RedisArgument(index))])) }
        let results = try await DedicatedTesting.within(.seconds(15), "50 readers to get their entries") { try await reads.value }
        #expect(results.count == 50 && results.allSatisfy { $0.count == 1 })
        #expect(Set(results.flatMap { $0.map(\.id) }) == added)
        #expect(try await DedicatedTesting.info(redis, "clients", "blocked_clients") == 0)
    }

    @Test("Cancelling a blocked read ends it at once and closes its connection; the next read works on a new one")
    func cancellation() async throws {
        let server = try RedisTestServer()
        let redis = try DedicatedTesting.client(server)
        let connector = try DedicatedTesting.connector(server)
        defer { Task { await redis.shutdown(); connector.shutdown() } }
        try await redis.xgroupCreate("jobs", group: "workers")
        let reader = connector.blockingConnection()
        let clientsBefore = try #require(try await DedicatedTesting.info(redis, "clients", "connected_clients"))

        let blocked = Task { try await reader.xreadgroup("jobs", group: "workers", consumer: "w1", block: .seconds(30)) }
        try await waitUntil("the read to block") { try await DedicatedTesting.info(redis, "clients", "blocked_clients") == 1 }
        let started = ContinuousClock.now
        blocked.cancel()
        let outcome = await DedicatedTesting.outcome(of: blocked, within: .seconds(5))
        let elapsed = ContinuousClock.now - started
        #expect(outcome is CancellationError, "ended with \(String(describing: outcome))")
        #expect(elapsed < .seconds(1), "the cancelled read took \(elapsed) to end")
        // The server saw the connection go, and with it the blocked command.
        try await waitUntil("the server to drop the cancelled read's connection") {
            let blockedNow = try await DedicatedTesting.info(redis, "clients", "blocked_clients")
            let connectedNow = try await DedicatedTesting.info(redis, "clients", "connected_clients")
            return blockedNow == 0 && connectedNow == clientsBefore
        }

        let id = try await redis.xadd("jobs", fields: [("job", "a")])
        let entries = try await DedicatedTesting.within(.seconds(5), "the read after the cancelled one") {
            try await reader.xreadgroup("jobs", group: "workers", consumer: "w1", block: .seconds(2))
        }
        #expect(entries.map(\.id) == [id])

        // A task cancelled before its call sends nothing (the new entry is not delivered), and
        // the connection stays for the next call, which gets the entry.
        let second = try await redis.xadd("jobs", fields: [("job", "b")])
        let early = Task {
            _ = withUnsafeCurrentTask { $0?.cancel() }
            return try await reader.xreadgroup("jobs", group: "workers", consumer: "w1", block: .seconds(2))
        }
        let earlyOutcome = await DedicatedTesting.outcome(of: early, within: .seconds(5))
        #expect(earlyOutcome is CancellationError)
        #expect(try await redis.xpending("jobs", group: "workers").count == 1)
        let connected = try await DedicatedTesting.info(redis, "clients", "connected_clients")
        #expect(try await reader.xreadgroup("jobs", group: "workers", consumer: "w1", block: .seconds(1)).map(\.id) == [second])
        #expect(try await DedicatedTesting.info(redis, "clients", "connected_clients") == connected)
    }

    @Test("After a server restart the next read reconnects by itself")
    func restart() async throws {
        let server = try RedisTestServer()
        let redis = try DedicatedTesting.client(server)
        let connector = try DedicatedTesting.connector(server)
        defer { Task { await redis.shutdown(); connector.shutdown() } }
        let reader = connector.blockingConnection()
        try await redis.xgroupCreate("jobs", group: "workers")
        #expect(try await reader.xreadgroup("jobs", group: "workers", consumer: "w1", block: .milliseconds(50)).isEmpty)
        server.stop()
        try server.start()
        // No persistence: the group is made again, then the idle connection, dropped by the
        // restart, is replaced within the call.
        try await redis.xgroupCreate("jobs", group: "workers")
        let id = try await redis.xadd("jobs", fields: [("job", "a")])
        let entries = try await reader.xreadgroup("jobs", group: "workers", consumer: "w1", block: .seconds(1))
        #expect(entries.map(\.id) == [id])
    }

    @Test("close() and the connector's shutdown() end blocked reads at once, as shut down")
    func shutdown() async throws {
        let server = try RedisTestServer()
        let redis = try DedicatedTesting.client(server)
        let connector = try DedicatedTesting.connector(server)
        defer { Task { await redis.shutdown() } }
        try await redis.xgroupCreate("jobs", group: "workers")
        let closing = connector.blockingConnection()
        let other = connector.blockingConnection()
        let first = Task { try await closing.xreadgroup("jobs", group: "workers", consumer: "a", block: .seconds(30)) }
        let second = Task { try await other.xreadgroup("jobs", group: "workers", consumer: "b", block: .seconds(30)) }
        try await waitUntil("both reads to block") { try await DedicatedTesting.info(redis, "clients", "blocked_clients") == 2 }

        var started = ContinuousClock.now
        closing.close()
        let closed = await DedicatedTesting.outcome(of: first, within: .seconds(5))
        #expect((closed as? RedisError)?.description.contains("shut down") == true, "ended with \(String(describing: closed))")
        #expect(ContinuousClock.now - started < .seconds(1))
        await #expect(throws: RedisError.self) { try await closing.xreadgroup("jobs", group: "workers", consumer: "a", block: .seconds(1)) }

        started = ContinuousClock.now
        connector.shutdown()
        let shut = await DedicatedTesting.outcome(of: second, within: .seconds(5))
        #expect((shut as? RedisError)?.description.contains("shut down") == true, "ended with \(String(describing: shut))")
        #expect(ContinuousClock.now - started < .seconds(1))
        await #expect(throws: RedisError.self) { try await connector.blockingConnection().blpop(["list"], timeout: .seconds(1)) }
    }
}

extension DedicatedTesting {
    /// How `task` ended (its error, or nil when it returned), or `TimeoutError` if it is still running
    /// after `limit`.
    static func outcome<T: Sendable>(of task: Task<T, any Error>, within limit: Duration) async -> (any Error)? {
        do {
            _ = try await within(limit, "the task to end") { try await task.value }
            return nil
        } catch {
            return error
        }
    }
}

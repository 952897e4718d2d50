import RedisClient
import TestSupport
import Testing

/// Against a real redis-server started for each test.
@Suite("Redis client against redis-server", .tags(.servers), .pass(.servers), .enabled(if: RedisTestServer.isInstalled, "redis-server is installed by scripts/test.sh"))
struct RedisClientTests {
    private func client(_ server: RedisTestServer, _ change: (inout RedisConfiguration) -> Void = { _ in }) throws -> RedisClient {
        var configuration = try RedisConfiguration(url: server.url)
        configuration.caFile = server.tls?.caFile
        change(&configuration)
        return try RedisClient(configuration: configuration)
    }

    @Test("Typed commands: GET, SET with expiry and NX, DEL, INCR, EXPIRE, TTL, EVAL; binary values")
    func commands() async throws {
        let server = try RedisTestServer()
        let redis = try client(server)
        defer { Task { await redis.shutdown() } }
        #expect(try await redis.get("missing") == nil)
        let binary: [UInt8] = [0, 13, 10, 255, 36, 42]
        try await redis.set("bin", binary)
        #expect(try await redis.get("bin") == binary)
        #expect(try await redis.set("bin", [1], onlyIfAbsent: true) == false)
        #expect(try await redis.set("fresh", [1], expiresIn: .seconds(100), onlyIfAbsent: true) == true)
        let ttl = try await redis.ttl("fresh")
        #expect((90...100).contains(ttl))
        #expect(try await redis.increment("n") == 1)
        #expect(try await redis.increment("n") == 2)
        #expect(try await redis.expire("n", after: .milliseconds(30_500)))
        let left = try #require(try await redis.timeToLive("n"))
        #expect(left > .zero && left <= .milliseconds(30_500))
        #expect(try await redis.ttl("bin") == -1)
        #expect(try await redis.ttl("nothing") == -2)
        #expect(try await redis.delete(["bin", "n", "nothing"]) == 2)
        let sum = try await redis.eval("return tonumber(ARGV[1]) + redis.call('INCRBY', KEYS[1], 5)", keys: ["c"], arguments: ["10"])
        #expect(sum == .integer(15))
        // Second time by its SHA-1 (EVALSHA), cached by the server now.
        #expect(try await redis.eval("return tonumber(ARGV[1]) + redis.call('INCRBY', KEYS[1], 5)", keys: ["c"], arguments: ["10"]) == .integer(20))
    }

    @Test("An error reply throws, names the command, and leaves the connection usable")
    func serverError() async throws {
        let server = try RedisTestServer()
        let redis = try client(server) { $0.poolSize = 1 }
        defer { Task { await redis.shutdown() } }
        try await redis.set("text", Array("x".utf8))
        do {
            _ = try await redis.increment("text")
            Issue.record("INCR on text must fail")
        } catch let error as RedisError {
            #expect(error.isServerError)
            #expect("\(error)".contains("INCR") && "\(error)".contains("127.0.0.1:\(server.port)"))
        }
        #expect(try await redis.get("text") == Array("x".utf8))
        let replies = try await redis.pipeline([["INCR", "text"], ["GET", "text"]])
        guard case .error = replies[0] else { Issue.record("the pipeline keeps the error as a value"); return }
        #expect(replies[1] == .bulk(Array("x".utf8)))
    }

    @Test("A pipeline of 10,000 commands, replies in order")
    func longPipeline() async throws {
        let server = try RedisTestServer()
        let redis = try client(server)
        defer { Task { await redis.shutdown() } }
        let commands: [RedisCommand] = (0..<10_000).map { _ in ["INCR", "counter"] }
        let replies = try await redis.pipeline(commands)
        #expect(replies.count == 10_000)
        #expect(replies.enumerated().allSatisfy { $0.element == .integer(Int64($0.offset + 1)) })
    }

    @Test("A reply larger than 16 MB arrives whole; one over REDIS_MAX_REPLY_BYTES fails and the client goes on")
    func largeReply() async throws {
        let server = try RedisTestServer()
        let redis = try client(server)
        defer { Task { await redis.shutdown() } }
        let value = (0..<(20 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        try await redis.set("big", value)
        #expect(try await redis.get("big") == value)
        let capped = try client(server) { $0.maxReplyBytes = 1 << 20 }
        defer { Task { await capped.shutdown() } }
        do {
            _ = try await capped.get("big")
            Issue.record("a 20 MB reply must exceed a 1 MB cap")
        } catch let error as RedisError {
            #expect("\(error)".contains("larger than"))
        }
        #expect(try await capped.get("missing") == nil)
    }

    @Test("AUTH: the right password and an ACL user work; a wrong one fails naming the server")
    func authentication() async throws {
        let server = try RedisTestServer(password: "s3cret")
        let good = try client(server) { $0.password = "s3cret" }
        defer { Task { await good.shutdown() } }
        try await good.ping()
        let bad = try client(server) { $0.password = "wrong" }
        defer { Task { await bad.shutdown() } }
        await #expect(throws: RedisError.self) { try await bad.ping() }
        let none = try client(server)
        defer { Task { await none.shutdown() } }
        do {
            try await none.ping()
            Issue.record("NOAUTH expected")
        } catch {
            #expect("\(error)".contains("127.0.0.1:\(server.port)") && "\(error)".contains("password"))
        }
        let acl = try RedisTestServer(password: "pw", user: "app")
        let user = try client(acl) { $0.user = "app"; $0.password = "pw" }
        defer { Task { await user.shutdown() } }
        try await user.set("k", [1])
        #expect(try await user.get("k") == [1])
    }

    @Test("SELECT: the database in the URL is the one used")
    func database() async throws {
        let server = try RedisTestServer()
        let db2 = try client(server) { $0.database = 2 }
        let db0 = try client(server)
        defer { Task { await db2.shutdown(); await db0.shutdown() } }
        try await db2.set("where", Array("two".utf8))
        #expect(try await db0.get("where") == nil)
        #expect(try await db2.get("where") == Array("two".utf8))
    }

    @Test("TLS: verified against a private CA; refused without it; insecure=true skips the check")
    func tls() async throws {
        let server = try RedisTestServer(tls: true)
        let verified = try client(server)
        defer { Task { await verified.shutdown() } }
        try await verified.set("secure", [7])
        #expect(try await verified.get("secure") == [7])
        // Larger than the socket takes at once: the write is finished after a partial TLS write.
        let large = (0..<(3 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        try await verified.set("large", large)
        #expect(try await verified.get("large") == large)
        let replies = try await verified.pipeline((0..<1000).map { ["INCR", RedisArgument("n\($0 % 10)")] })
        #expect(replies.count == 1000 && replies.last == .integer(100))
        let byAddress = try client(server) { $0.host = "127.0.0.1" }
        defer { Task { await byAddress.shutdown() } }
        #expect(try await byAddress.get("secure") == [7])

        let untrusted = try client(server) { $0.caFile = nil }
        defer { Task { await untrusted.shutdown() } }
        do {
            try await untrusted.ping()
            Issue.record("an unknown CA must be refused")
        } catch let error as RedisError {
            #expect("\(error)".contains("certificate"))
            #expect(error.isUnavailable)
        }
        let insecure = try client(server) { $0.caFile = nil; $0.insecureTLS = true }
        defer { Task { await insecure.shutdown() } }
        #expect(try await insecure.get("secure") == [7])
        let plain = try client(server) { $0.tls = false }
        defer { Task { await plain.shutdown() } }
        await #expect(throws: RedisError.self) { try await plain.ping() }
        #expect(throws: RedisError.self) { try RedisClient(configuration: RedisConfiguration(tls: true, caFile: "/nonexistent/ca.pem")) }
    }

    @Test("Server killed mid-test: calls fail naming the server, then work again once it is back")
    func restart() async throws {
        let server = try RedisTestServer()
        let redis = try client(server) { $0.connectTimeout = .seconds(1) }
        defer { Task { await redis.shutdown() } }
        // Every pooled connection is in use once, so all of them go stale at the kill.
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<16 { group.addTask { try await redis.set("k\(index)", [1]) } }
            try await group.waitForAll()
        }
        server.stop()
        do {
            _ = try await redis.get("k0")
            Issue.record("the server is down")
        } catch let error as RedisError {
            #expect(error.isUnavailable)
            #expect("\(error)".contains("127.0.0.1:\(server.port)") && "\(error)".contains("GET"))
        }
        try server.start()
        // The data is gone (no persistence), but the client reconnects on its own.
        #expect(try await redis.get("k0") == nil)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<16 { group.addTask { try await redis.set("k\(index)", [2]) } }
            try await group.waitForAll()
        }
        #expect(try await redis.get("k15") == [2])
    }

    @Test("A slow command times out and the next call works; many callers share a small pool")
    func timeoutAndPool() async throws {
        let server = try RedisTestServer(extra: ["--enable-debug-command", "yes"])
        let redis = try client(server) { $0.commandTimeout = .milliseconds(300); $0.poolSize = 3 }
        defer { Task { await redis.shutdown() } }
        do {
            _ = try await redis.send(["DEBUG", "SLEEP", "1"])
            Issue.record("DEBUG SLEEP 1 must time out")
        } catch let error as RedisError {
            #expect(error.isTimeout)
            #expect("\(error)".contains("DEBUG"))
        }
        // The same client goes on (a new connection replaces the timed-out one) once the server
        // is free again; a loaded machine may need a few tries within the 300 ms limit.
        try await Task.sleep(for: .milliseconds(900))
        var after: Int64?
        for _ in 0..<10 where after == nil {
            after = try? await redis.increment("after")
            if after == nil { try await Task.sleep(for: .milliseconds(300)) }
        }
        #expect(after != nil)
        // 200 callers on 3 connections, with room to wait their turn on a loaded machine.
        let shared = try client(server) { $0.commandTimeout = .seconds(20); $0.poolSize = 3 }
        defer { Task { await shared.shutdown() } }
        let results = try await withThrowingTaskGroup(of: Int64.self) { group in
            for _ in 0..<200 { group.addTask { try await shared.increment("shared") } }
            return try await group.reduce(into: [Int64]()) { $0.append($1) }
        }
        #expect(Set(results).count == 200)
        #expect(shared.openConnections <= 3)
    }

    @Test("Nobody listening: a clear connect error, quickly")
    func refused() async throws {
        let redis = try RedisClient(configuration: RedisConfiguration(port: RedisTestServer.unusedPort()))
        defer { Task { await redis.shutdown() } }
        do {
            try await redis.ping()
            Issue.record("nothing listens there")
        } catch let error as RedisError {
            #expect(error.isUnavailable)
            #expect("\(error)".contains("connect"))
        }
    }

    @Test("After shutdown, calls fail instead of hanging")
    func shutDown() async throws {
        let server = try RedisTestServer()
        let redis = try client(server)
        try await redis.ping()
        await redis.shutdown()
        await #expect(throws: RedisError.self) { try await redis.ping() }
    }
}

@testable import RedisClient
import Testing
import TestSupport

/// A server that answers with counts it never honours: the client must fail the call, never
/// allocate what the wire announces (a 13-byte reply once asked for 51 GB and aborted the process).
@Suite("Redis client against a hostile server", .defaultPass)
struct HostileServerTests {
    static func client(port: Int) throws -> RedisClient {
        var configuration = try RedisConfiguration(url: "redis://127.0.0.1:\(port)")
        configuration.connectTimeout = .milliseconds(500)
        configuration.commandTimeout = .milliseconds(300)
        configuration.maxReplyBytes = 1 << 20
        return try RedisClient(configuration: configuration)
    }

    @Test(
        "An announced count of 2^31 (array, nested array, bulk string) fails the call; the process lives",
        arguments: ["*2147483647\r\n", "*2\r\n:1\r\n*2147483647\r\n", "$2147483647\r\n", "*9223372036854775807\r\n"])
    func hugeCounts(reply: String) async throws {
        let server = try ScriptedTCPServer { _ in Array(reply.utf8) }
        defer { server.stop() }
        let redis = try Self.client(port: server.port)
        defer { Task { await redis.shutdown() } }
        await #expect(throws: RedisError.self) { try await redis.ping() }
        await #expect(throws: RedisError.self) { _ = try await redis.get("k") }
        await #expect(throws: RedisError.self) { _ = try await redis.eval("return 1") }
    }

    @Test("An announced array that keeps coming past REDIS_MAX_REPLY_BYTES ends with replyTooLarge")
    func floodedArray() async throws {
        let flood = Array("*2147483647\r\n".utf8) + Array(repeating: Array(":1\r\n".utf8), count: 600_000).flatMap { $0 }
        let server = try ScriptedTCPServer { _ in flood }
        defer { server.stop() }
        // Time enough to read the megabyte under a loaded test run: the limit must end it, not the clock.
        var configuration = try RedisConfiguration(url: "redis://127.0.0.1:\(server.port)")
        configuration.maxReplyBytes = 1 << 20
        configuration.commandTimeout = .seconds(20)
        let redis = try RedisClient(configuration: configuration)
        defer { Task { await redis.shutdown() } }
        let error = await #expect(throws: RedisError.self) { _ = try await redis.get("k") }
        #expect(error?.description.contains("REDIS_MAX_REPLY_BYTES") == true)
    }

    @Test("How late past its limit a call that hears nothing may end: a twentieth, 2 to 250 ms")
    func sweepInterval() {
        #expect(RedisClient.sweepInterval(for: .seconds(5)) == .milliseconds(250))
        #expect(RedisClient.sweepInterval(for: .milliseconds(300)) == .milliseconds(15))
        #expect(RedisClient.sweepInterval(for: .milliseconds(1)) == .milliseconds(2))
        #expect(RedisClient.sweepInterval(for: .seconds(3600)) == .milliseconds(250))
    }

    @Test("What a reply under way costs counts its parsed values, not only its bytes (4-byte elements cost far more once built)")
    func parsedCost() throws {
        let reader = RESPReader()
        let flood = Array("*2147483647\r\n".utf8) + Array(repeating: Array(":1\r\n".utf8), count: 1000).flatMap { $0 }
        try flood.withUnsafeBytes { try reader.feed($0) }
        #expect(try reader.next() == nil)
        #expect(reader.pendingCost >= 1000 * RESPReader.elementCost)
        let whole = RESPReader()
        try Array("*2\r\n:1\r\n:2\r\n$1\r\nx\r\n".utf8).withUnsafeBytes { try whole.feed($0) }
        _ = try whole.next()
        #expect(whole.pendingCost > 0)
        _ = try whole.next()
        #expect(whole.pendingCost == 0)
    }

    @Test("The reader reserves a bounded number of elements whatever the count")
    func boundedReservation() throws {
        let reader = RESPReader()
        try Array("*2147483647\r\n:1\r\n:2\r\n".utf8).withUnsafeBytes { try reader.feed($0) }
        #expect(try reader.next() == nil)
        let small = RESPReader()
        try Array("*2\r\n:1\r\n:2\r\n".utf8).withUnsafeBytes { try small.feed($0) }
        #expect(try small.next() == .array([.integer(1), .integer(2)]))
    }
}

@testable import RedisClient
import Testing
import TestSupport

/// How soon a call to a silent or trickling server ends. Calls wait on the reactor and resume on
/// Swift's shared pool, so a run that saturates both cores (the default pass) delays them by
/// seconds: these run in the servers pass, one test at a time.
@Suite("Redis client deadlines against a hostile server", .tags(.servers), .pass(.servers))
struct HostileServerDeadlineTests {
    @Test("A server that never answers: the call ends at its deadline, and the next one too")
    func silentServer() async throws {
        let server = try ScriptedTCPServer { _ in [] }
        defer { server.stop() }
        let redis = try HostileServerTests.client(port: server.port)
        defer { Task { await redis.shutdown() } }
        for _ in 0..<2 {
            let started = ContinuousClock.now
            let error = await #expect(throws: RedisError.self) { try await redis.ping() }
            let elapsed = ContinuousClock.now - started
            #expect(error?.isTimeout == true)
            // The reactor ends waits within a twentieth of the limit past it; the rest is a loaded host.
            #expect(elapsed >= .milliseconds(300) && elapsed < .seconds(2), "ended after \(elapsed)")
        }
    }

    @Test("A reply that keeps coming a byte at a time never keeps a call past its deadline")
    func tricklingReply() async throws {
        let server = try TricklingServer()
        defer { server.stop() }
        let redis = try HostileServerTests.client(port: server.port)
        defer { Task { await redis.shutdown() } }
        let started = ContinuousClock.now
        let error = await #expect(throws: RedisError.self) { _ = try await redis.get("k") }
        let elapsed = ContinuousClock.now - started
        #expect(error?.isTimeout == true)
        #expect(elapsed < .seconds(2), "ended after \(elapsed)")
    }
}

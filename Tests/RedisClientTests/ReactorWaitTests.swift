import Foundation
import RedisClient
import TestSupport
import Testing

/// Calls wait for their replies on the client's reactor: no thread per waiting call or
/// connection, and over TLS nothing OpenSSL has read and kept is waited past (bytes it holds are
/// invisible to epoll, so a call that waited on them would sit until its deadline).
@Suite(
    "Redis client waiting on the reactor", .tags(.servers), .pass(.servers),
    .enabled(if: RedisTestServer.isInstalled, "redis-server is installed by scripts/test.sh"))
struct ReactorWaitTests {
    private func client(_ server: RedisTestServer, _ change: (inout RedisConfiguration) -> Void = { _ in }) throws -> RedisClient {
        var configuration = try RedisConfiguration(url: server.url)
        configuration.caFile = server.tls?.caFile
        change(&configuration)
        return try RedisClient(configuration: configuration)
    }

    @Test("TLS: replies that share one record, a pipeline's replies over many records, values over 64 KiB")
    func tlsBufferedBytes() async throws {
        let server = try RedisTestServer(tls: true)
        // A call that waited on bytes already inside OpenSSL would sit until this and fail.
        let redis = try client(server) { $0.commandTimeout = .seconds(5); $0.poolSize = 2 }
        defer { Task { await redis.shutdown() } }
        // Redis writes a pipeline's replies at once: 300 PONGs (2 kB) travel in one record.
        let pings: [RedisCommand] = Array(repeating: ["PING"], count: 300)
        for round in 0..<50 {
            let replies = try await redis.pipeline(pings)
            #expect(replies.count == 300 && replies.allSatisfy { $0 == .status("PONG") }, "round \(round)")
        }
        // 200 kB of replies: over a dozen 16 kB records that arrive together.
        let kilobyte = (0..<1024).map { UInt8(truncatingIfNeeded: $0 &* 13) }
        try await redis.set("kb", kilobyte)
        let gets: [RedisCommand] = Array(repeating: ["GET", "kb"], count: 200)
        for round in 0..<20 {
            let replies = try await redis.pipeline(gets)
            #expect(replies.count == 200 && replies.allSatisfy { $0 == .bulk(kilobyte) }, "round \(round)")
        }
        // Larger than the connection's 64 KiB read buffer, read and sent in many pieces.
        for size in [65_537, 200_000, 1 << 20, 5 << 20] {
            let value = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ size) }
            try await redis.set("v\(size)", value)
            for _ in 0..<5 { #expect(try await redis.get("v\(size)") == value) }
        }
        // Many callers over TLS at once: replies of several connections come together.
        let results = try await withThrowingTaskGroup(of: [UInt8]?.self) { group in
            for _ in 0..<100 { group.addTask { try await redis.get("v65537") } }
            return try await group.reduce(into: [[UInt8]?]()) { $0.append($1) }
        }
        #expect(results.count == 100 && results.allSatisfy { $0?.count == 65_537 })
    }

    @Test("200 callers on 4 connections are all answered, and no thread sits in poll for them", arguments: [false, true])
    func manyCallersFewThreads(tls: Bool) async throws {
        let server = try RedisTestServer(tls: tls)
        let redis = try client(server) { $0.poolSize = 4; $0.commandTimeout = .seconds(20) }
        let pauser = try client(server) { $0.poolSize = 1 }
        defer { Task { await redis.shutdown(); await pauser.shutdown() } }
        let value = Array("value".utf8)
        try await redis.set("shared", value)
        // Every connection opened (on threads of their own, which may linger) before counting:
        // with the server paused, four calls hold four connections at once.
        _ = try await pauser.send(["CLIENT", "PAUSE", "200"])
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<4 { group.addTask { _ = try await redis.get("shared") } }
            try await group.waitForAll()
        }
        #expect(redis.openConnections == 4)
        try await Task.sleep(for: .milliseconds(100))
        let threadsBefore = ThreadCensus.threads
        let pollingBefore = try await ThreadCensus.mostInPoll(samples: 10, interval: .milliseconds(10))

        // Paused, the server leaves four calls waiting for replies and 196 for a connection.
        _ = try await pauser.send(["CLIENT", "PAUSE", "600"])
        let calls = Task {
            try await withThrowingTaskGroup(of: [UInt8]?.self) { group in
                for _ in 0..<200 { group.addTask { try await redis.get("shared") } }
                return try await group.reduce(into: [[UInt8]?]()) { $0.append($1) }
            }
        }
        try await Task.sleep(for: .milliseconds(50))
        var threadsDuring = ThreadCensus.threads
        var pollingDuring: Int?
        for _ in 0..<30 {
            threadsDuring = max(threadsDuring, ThreadCensus.threads)
            if let now = ThreadCensus.inPoll() { pollingDuring = max(pollingDuring ?? 0, now) }
            try await Task.sleep(for: .milliseconds(10))
        }
        let results = try await calls.value

        #expect(results.count == 200 && results.allSatisfy { $0 == value })
        #expect(redis.openConnections <= 4)
        // The cooperative pool may grow to a thread per core meanwhile; a thread per caller (or
        // per connection) would show far beyond.
        let cores = ProcessInfo.processInfo.activeProcessorCount
        #expect(threadsDuring - threadsBefore <= cores + 2, "threads went from \(threadsBefore) to \(threadsDuring)")
        if let pollingBefore, let pollingDuring {
            #expect(pollingDuring <= pollingBefore, "threads in poll went from \(pollingBefore) to \(pollingDuring) while calls waited")
        }
    }

    @Test("Calls waiting when the client shuts down still get their replies")
    func shutdownWhileWaiting() async throws {
        let server = try RedisTestServer()
        let redis = try client(server) { $0.poolSize = 2 }
        let pauser = try client(server) { $0.poolSize = 1 }
        defer { Task { await pauser.shutdown() } }
        try await redis.set("k", [9])
        _ = try await pauser.send(["CLIENT", "PAUSE", "300"])
        let waiting = Task { try await redis.get("k") }
        try await Task.sleep(for: .milliseconds(100))
        await redis.shutdown()
        #expect(try await waiting.value == [9])
        await #expect(throws: RedisError.self) { try await redis.ping() }
    }
}

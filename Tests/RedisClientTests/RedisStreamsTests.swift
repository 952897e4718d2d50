import RedisClient
import Testing
import TestSupport

/// The Streams commands against a real redis-server: a job goes round a consumer group, a dead
/// consumer's entries are claimed by another, a lease is renewed.
@Suite(
    "Redis Streams commands against redis-server", .tags(.servers), .pass(.servers),
    .enabled(if: RedisTestServer.isInstalled, "redis-server is installed by scripts/test.sh"))
struct RedisStreamsTests {
    @Test("XADD, XGROUP CREATE (BUSYGROUP is no failure), XREADGROUP, XPENDING, XACK, XRANGE, XDEL, XLEN: an entry goes round")
    func roundTrip() async throws {
        let server = try RedisTestServer()
        let redis = try DedicatedTesting.client(server)
        defer { Task { await redis.shutdown() } }
        #expect(try await redis.xgroupCreate("jobs", group: "workers"))
        #expect(try await redis.xgroupCreate("jobs", group: "workers") == false)
        // Without MKSTREAM a missing stream is an error, as Redis says.
        let missing = await #expect(throws: RedisError.self) { try await redis.xgroupCreate("absent", group: "g", makeStream: false) }
        #expect(missing?.isServerError == true)

        let input: [UInt8] = [0, 13, 10, 255, 36, 42]
        let id = try await redis.xadd("jobs", fields: [("input", RedisArgument(bytes: input)), ("attempt", "1")], maxLength: 1000)
        #expect(id.contains("-"))
        #expect(try await redis.xlen("jobs") == 1)

        let read = try await redis.xreadgroup("jobs", group: "workers", consumer: "w1", count: 10)
        #expect(read.count == 1)
        let entry = try #require(read.first)
        #expect(entry.id == id)
        #expect(entry.fields == [RedisStreamField(name: "input", value: input), RedisStreamField(name: "attempt", value: Array("1".utf8))])
        #expect(entry["input"] == input && entry["missing"] == nil && !entry.isDeleted)
        // Nothing new for the group now.
        #expect(try await redis.xreadgroup("jobs", group: "workers", consumer: "w2").isEmpty)

        let summary = try await redis.xpending("jobs", group: "workers")
        #expect(summary == RedisPendingSummary(count: 1, smallestID: id, greatestID: id, consumers: ["w1": 1]))
        let pending = try await redis.xpending("jobs", group: "workers", count: 10)
        #expect(pending.map(\.id) == [id] && pending.first?.consumer == "w1" && pending.first?.deliveries == 1)
        #expect(try await redis.xpending("jobs", group: "workers", count: 10, consumer: "w2").isEmpty)
        #expect(try await redis.xpending("jobs", group: "workers", count: 10, minIdle: .seconds(60)).isEmpty)
        // After a restart, a consumer re-reads what it holds.
        #expect(try await redis.xreadgroup("jobs", group: "workers", consumer: "w1", after: "0") == [entry])

        #expect(try await redis.xack("jobs", group: "workers", ids: [id]) == 1)
        #expect(try await redis.xack("jobs", group: "workers", ids: [id]) == 0)
        #expect(try await redis.xpending("jobs", group: "workers") == RedisPendingSummary(count: 0, smallestID: nil, greatestID: nil, consumers: [:]))
        #expect(try await redis.xreadgroup("jobs", group: "workers", consumer: "w1", after: "0").isEmpty)

        // Acknowledged is not deleted: the entry stays in the stream until XDEL.
        #expect(try await redis.xrange("jobs") == [entry])
        #expect(try await redis.xdel("jobs", ids: [id]) == 1)
        #expect(try await redis.xlen("jobs") == 0)

        // Exact trimming keeps the newest `maxLength`; approximate keeps at least as many.
        var last = ""
        for index in 0..<300 { last = try await redis.xadd("trimmed", fields: [("n", RedisArgument(index))], maxLength: 100, exactTrim: true) }
        #expect(try await redis.xlen("trimmed") == 100)
        let newest = try await redis.xrange("trimmed", start: last, end: "+")
        #expect(newest.count == 1 && newest.first?["n"] == Array("299".utf8))
        #expect(try await redis.xrange("trimmed", count: 3).map { $0["n"] } == [Array("200".utf8), Array("201".utf8), Array("202".utf8)])
        for index in 0..<300 { try await redis.xadd("rough", fields: [("n", RedisArgument(index))], maxLength: 100) }
        #expect(try await redis.xlen("rough") >= 100)
    }

    @Test("XAUTOCLAIM moves entries idle past min-idle to another consumer, counting a delivery; deleted ones are named on Redis 7")
    func autoclaim() async throws {
        let server = try RedisTestServer()
        let redis = try DedicatedTesting.client(server)
        defer { Task { await redis.shutdown() } }
        try await redis.xgroupCreate("jobs", group: "workers")
        let first = try await redis.xadd("jobs", fields: [("job", "a")])
        let second = try await redis.xadd("jobs", fields: [("job", "b")])
        #expect(try await redis.xreadgroup("jobs", group: "workers", consumer: "dead", count: 2).map(\.id) == [first, second])

        // Not idle long enough: nothing moves.
        let early = try await redis.xautoclaim("jobs", group: "workers", consumer: "rescuer", minIdle: .seconds(10))
        #expect(early.entries.isEmpty && early.next == "0-0")

        try await Task.sleep(for: .milliseconds(150))
        // One at a time: the cursor names where the next call goes on.
        let one = try await redis.xautoclaim("jobs", group: "workers", consumer: "rescuer", minIdle: .milliseconds(100), count: 1)
        #expect(one.entries.map(\.id) == [first] && one.entries.first?["job"] == Array("a".utf8))
        #expect(one.next == second)
        let two = try await redis.xautoclaim("jobs", group: "workers", consumer: "rescuer", minIdle: .milliseconds(100), start: one.next, count: 1)
        #expect(two.entries.map(\.id) == [second] && two.next == "0-0")

        let pending = try await redis.xpending("jobs", group: "workers", count: 10)
        #expect(pending.map(\.consumer) == ["rescuer", "rescuer"])
        #expect(pending.map(\.deliveries) == [2, 2])
        #expect(try await redis.xpending("jobs", group: "workers").consumers == ["rescuer": 2])

        // An entry deleted while pending: Redis 7 drops it from the pending list and names it.
        #expect(try await redis.xdel("jobs", ids: [first]) == 1)
        let after = try await redis.xautoclaim("jobs", group: "workers", consumer: "third", minIdle: .zero)
        #expect(after.entries.map(\.id) == [second])
        if try await DedicatedTesting.majorVersion(redis) >= 7 {
            #expect(after.deletedIDs == [first])
            #expect(try await redis.xpending("jobs", group: "workers", count: 10).map(\.id) == [second])
        }
    }

    @Test("XCLAIM IDLE 0 JUSTID renews a lease (idle starts again, deliveries stay); XCLAIM to another consumer counts one")
    func claim() async throws {
        let server = try RedisTestServer()
        let redis = try DedicatedTesting.client(server)
        defer { Task { await redis.shutdown() } }
        try await redis.xgroupCreate("jobs", group: "workers")
        let id = try await redis.xadd("jobs", fields: [("job", "a")])
        _ = try await redis.xreadgroup("jobs", group: "workers", consumer: "w1")
        try await Task.sleep(for: .milliseconds(300))
        let before = try #require(try await redis.xpending("jobs", group: "workers", count: 1).first)
        #expect(before.idle >= .milliseconds(300))

        #expect(try await redis.xclaimIDs("jobs", group: "workers", consumer: "w1", minIdle: .zero, ids: [id], idle: .zero) == [id])
        let renewed = try #require(try await redis.xpending("jobs", group: "workers", count: 1).first)
        #expect(renewed.idle < .milliseconds(200) && renewed.consumer == "w1" && renewed.deliveries == 1)
        // The lease holds: a rescuer looking for entries idle 250 ms finds none.
        #expect(try await redis.xautoclaim("jobs", group: "workers", consumer: "w2", minIdle: .milliseconds(250)).entries.isEmpty)

        // min-idle is checked: too fresh to take.
        #expect(try await redis.xclaim("jobs", group: "workers", consumer: "w2", minIdle: .seconds(10), ids: [id]).isEmpty)
        let taken = try await redis.xclaim("jobs", group: "workers", consumer: "w2", minIdle: .zero, ids: [id])
        #expect(taken.map(\.id) == [id] && taken.first?["job"] == Array("a".utf8))
        let moved = try #require(try await redis.xpending("jobs", group: "workers", count: 1).first)
        #expect(moved.consumer == "w2" && moved.deliveries == 2)
        // RETRYCOUNT sets the count outright.
        _ = try await redis.xclaimIDs("jobs", group: "workers", consumer: "w2", minIdle: .zero, ids: [id], retryCount: 7)
        #expect(try await redis.xpending("jobs", group: "workers", count: 1).first?.deliveries == 7)
    }
}

/// Reply shapes a real server of this version does not give: Redis 6.2's, and wrong ones.
@Suite("Redis Streams replies of other versions and of the wrong shape", .defaultPass)
struct RedisStreamRepliesTests {
    /// A server answering each command by its name, from `answers`.
    private func server(_ answers: [String: String]) throws -> ScriptedTCPServer {
        try ScriptedTCPServer { received in
            let text = String(decoding: received, as: UTF8.self)
            guard let answer = answers.first(where: { text.contains("\r\n\($0.key)\r\n") })?.value else { return Array("-ERR unknown\r\n".utf8) }
            return Array(answer.utf8)
        }
    }

    private func client(_ server: ScriptedTCPServer) throws -> RedisClient {
        var configuration = try RedisConfiguration(url: "redis://127.0.0.1:\(server.port)")
        configuration.connectTimeout = .seconds(2)
        configuration.commandTimeout = .seconds(2)
        return try RedisClient(configuration: configuration)
    }

    @Test("Redis 6.2's XAUTOCLAIM: two elements, nil where an entry was deleted")
    func autoclaimOf62() async throws {
        let entry = "*2\r\n$3\r\n1-0\r\n*2\r\n$3\r\njob\r\n$1\r\na\r\n"
        let server = try server(["XAUTOCLAIM": "*2\r\n$3\r\n5-0\r\n*2\r\n\(entry)$-1\r\n"])
        defer { server.stop() }
        let redis = try client(server)
        defer { Task { await redis.shutdown() } }
        let claimed = try await redis.xautoclaim("jobs", group: "g", consumer: "c", minIdle: .seconds(1))
        #expect(claimed.next == "5-0" && claimed.deletedIDs.isEmpty)
        #expect(claimed.entries == [RedisStreamEntry(id: "1-0", fields: [RedisStreamField(name: "job", value: Array("a".utf8))])])
    }

    @Test(
        "A reply of the wrong shape throws unexpectedReply naming the command",
        arguments: [
            ("XADD", ":1\r\n"), ("XLEN", "+OK\r\n"), ("XACK", "$1\r\n1\r\n"), ("XRANGE", "*1\r\n*2\r\n$3\r\n1-0\r\n*1\r\n$1\r\nx\r\n"),
            ("XREADGROUP", "*1\r\n*2\r\n$5\r\nother\r\n*0\r\n"), ("XAUTOCLAIM", "*4\r\n$3\r\n0-0\r\n*0\r\n*0\r\n*0\r\n"),
            ("XPENDING", "*4\r\n:1\r\n$3\r\n1-0\r\n$-1\r\n$-1\r\n"), ("XCLAIM", "*1\r\n:5\r\n"), ("XGROUP", ":1\r\n"),
        ])
    func wrongShapes(command: String, reply: String) async throws {
        let server = try server([command: reply])
        defer { server.stop() }
        let redis = try client(server)
        defer { Task { await redis.shutdown() } }
        let error = await #expect(throws: RedisError.self) {
            switch command {
            case "XADD": _ = try await redis.xadd("jobs", fields: [("job", "a")])
            case "XLEN": _ = try await redis.xlen("jobs")
            case "XACK": _ = try await redis.xack("jobs", group: "g", ids: ["1-0"])
            case "XRANGE": _ = try await redis.xrange("jobs")
            case "XREADGROUP": _ = try await redis.xreadgroup("jobs", group: "g", consumer: "c")
            case "XAUTOCLAIM": _ = try await redis.xautoclaim("jobs", group: "g", consumer: "c", minIdle: .zero)
            case "XPENDING": _ = try await redis.xpending("jobs", group: "g")
            case "XCLAIM": _ = try await redis.xclaimIDs("jobs", group: "g", consumer: "c", minIdle: .zero, ids: ["1-0"])
            default: _ = try await redis.xgroupCreate("jobs", group: "g")
            }
        }
        #expect(error?.isServerError == false)
        #expect(error?.description.contains("\(command) failed: unexpected reply") == true, "\(String(describing: error))")
    }
}

import RedisClient
import Testing
import TestSupport
import WorkerRuntimeTesting

/// Subscriptions on connections of their own: messages in order, gaps reported after the
/// connection is lost, silence checked, a consumer that falls behind told what it lost.
@Suite(
    "Redis subscriber against redis-server", .tags(.servers), .pass(.servers),
    .enabled(if: RedisTestServer.isInstalled, "redis-server is installed by scripts/test.sh"))
struct RedisSubscriberTests {
    @Test("Messages on channels and shard channels arrive in order; PUBLISH counts the subscriber; close() ends the events")
    func messagesInOrder() async throws {
        let server = try RedisTestServer()
        let redis = try DedicatedTesting.client(server)
        let connector = try DedicatedTesting.connector(server)
        defer { Task { await redis.shutdown(); connector.shutdown() } }
        let subscriber = connector.subscriber(channels: ["results", "results"], shardChannels: ["{ep}:done"])
        #expect(subscriber.channels == ["results"])
        let log = EventLog(subscriber.events)
        try await waitUntil("the subscription") { log.kinds == ["subscribed"] }

        for index in 0..<100 { #expect(try await redis.publish("results", Array("m\(index)".utf8)) == 1) }
        for index in 0..<10 { #expect(try await redis.spublish("{ep}:done", Array("s\(index)".utf8)) == 1) }
        #expect(try await redis.publish("elsewhere", [1]) == 0)
        try await waitUntil("110 messages") { log.messages.count == 110 }
        let plain = log.messages.filter { !$0.isShard }
        let sharded = log.messages.filter(\.isShard)
        #expect(plain.map { String(decoding: $0.payload, as: UTF8.self) } == (0..<100).map { "m\($0)" })
        #expect(plain.allSatisfy { $0.channel == "results" })
        #expect(sharded.map { String(decoding: $0.payload, as: UTF8.self) } == (0..<10).map { "s\($0)" })
        #expect(sharded.allSatisfy { $0.channel == "{ep}:done" })
        #expect(log.count("disconnected") == 0)

        subscriber.close()
        try await waitUntil("the events to end") { log.ended }
        try await waitUntil("the server to drop the subscription") {
            try await redis.send(["PUBSUB", "NUMSUB", "results"]) == .array([.bulk(Array("results".utf8)), .integer(0)])
        }
        #expect(try await redis.publish("results", [1]) == 0)
    }

    @Test("Killed by CLIENT KILL TYPE pubsub: the gap is reported, the subscription renewed, later messages heard")
    func killed() async throws {
        let server = try RedisTestServer()
        let redis = try DedicatedTesting.client(server)
        let connector = try DedicatedTesting.connector(server)
        defer { Task { await redis.shutdown(); connector.shutdown() } }
        let subscriber = connector.subscriber(channels: ["results"])
        let log = EventLog(subscriber.events)
        try await waitUntil("the subscription") { log.kinds == ["subscribed"] }
        #expect(try await redis.publish("results", Array("before".utf8)) == 1)
        try await waitUntil("the first message") { log.messages.count == 1 }

        let killed = try await redis.send(["CLIENT", "KILL", "TYPE", "pubsub"])
        #expect(killed == .integer(1))
        try await waitUntil("the subscription renewed") { log.count("reconnected") == 1 }
        #expect(log.kinds == ["subscribed", "message", "disconnected", "reconnected"])
        guard case .disconnected(let error) = log.events[2] else { Issue.record("expected .disconnected"); return }
        #expect(error.isUnavailable && error.description.contains("127.0.0.1:\(server.port)"))

        #expect(try await redis.publish("results", Array("after".utf8)) == 1)
        try await waitUntil("the message after the gap") { log.messages.count == 2 }
        #expect(log.messages.map(\.payload) == [Array("before".utf8), Array("after".utf8)])
    }

    @Test("Server restart: one .disconnected however many tries, .reconnected once it is back, then messages again")
    func restart() async throws {
        let server = try RedisTestServer()
        let redis = try DedicatedTesting.client(server)
        let connector = try DedicatedTesting.connector(server) { $0.connectTimeout = .milliseconds(500) }
        defer { Task { await redis.shutdown(); connector.shutdown() } }
        let subscriber = connector.subscriber(shardChannels: ["{ep}:done"])
        let log = EventLog(subscriber.events)
        try await waitUntil("the subscription") { log.kinds == ["subscribed"] }

        server.stop()
        try await waitUntil("the loss reported") { log.count("disconnected") == 1 }
        // Several refused tries meanwhile.
        try await Task.sleep(for: .milliseconds(400))
        try server.start()
        try await waitUntil("the subscription renewed") { log.count("reconnected") == 1 }
        #expect(log.kinds == ["subscribed", "disconnected", "reconnected"])
        #expect(try await redis.spublish("{ep}:done", Array("job-1".utf8)) == 1)
        try await waitUntil("the message after the restart") { log.messages.count == 1 }
        #expect(log.messages.first == RedisPubSubMessage(channel: "{ep}:done", payload: Array("job-1".utf8), isShard: true))
    }

    @Test("A quiet connection is checked with PING and kept: no gap reported, messages still heard")
    func keepAlive() async throws {
        let server = try RedisTestServer()
        let redis = try DedicatedTesting.client(server)
        let connector = try DedicatedTesting.connector(server) { $0.commandTimeout = .seconds(1) }
        defer { Task { await redis.shutdown(); connector.shutdown() } }
        let subscriber = connector.subscriber(channels: ["results"], keepAlive: .milliseconds(100))
        let log = EventLog(subscriber.events)
        try await waitUntil("the subscription") { log.kinds == ["subscribed"] }
        // Several keep-alive periods, each answered.
        try await waitUntil("three PINGs answered") {
            let text = try await redis.send(["INFO", "commandstats"]).string ?? ""
            let calls = text.split(whereSeparator: \.isNewline).first { $0.hasPrefix("cmdstat_ping:calls=") }?
                .dropFirst("cmdstat_ping:calls=".count).prefix { $0 != "," }
            return Int(calls ?? "") ?? 0 >= 3
        }
        #expect(log.kinds == ["subscribed"])
        #expect(try await redis.publish("results", [7]) == 1)
        try await waitUntil("the message") { log.messages.count == 1 }
        #expect(log.messages.first?.payload == [7])
    }

    @Test("A consumer that falls behind: the oldest events are dropped and one notice says how many")
    func overflow() async throws {
        let server = try RedisTestServer()
        let redis = try DedicatedTesting.client(server)
        let connector = try DedicatedTesting.connector(server)
        defer { Task { await redis.shutdown(); connector.shutdown() } }
        let subscriber = connector.subscriber(channels: ["results"], bufferLimit: 10)
        try await DedicatedTesting.within(.seconds(20), "the overflowing consumer") {
            var events = subscriber.events.makeAsyncIterator()
            guard case .subscribed = await events.next() else {
                Issue.record("the first event is .subscribed")
                return
            }
            for index in 0..<50 { #expect(try await redis.publish("results", Array("m\(index)".utf8)) == 1) }
            try await waitUntil("40 events dropped") { subscriber.droppedEvents == 40 }
            guard case .overflowed(let dropped) = await events.next() else {
                Issue.record("the next event is .overflowed")
                return
            }
            #expect(dropped == 40)
            var kept: [String] = []
            for _ in 0..<10 {
                guard case .message(let message) = await events.next() else { break }
                kept.append(String(decoding: message.payload, as: UTF8.self))
            }
            #expect(kept == (40..<50).map { "m\($0)" })
            // Caught up: the next message comes through as it is published.
            #expect(try await redis.publish("results", Array("m50".utf8)) == 1)
            guard case .message(let next) = await events.next() else {
                Issue.record("a message after catching up")
                return
            }
            #expect(next.payload == Array("m50".utf8))
        }
        #expect(subscriber.droppedEvents == 40)
    }
}

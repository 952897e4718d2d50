@testable import RedisClient
import Testing
import TestSupport

/// The subscriber's parts that need no server: its bounded buffer and how it reads what a
/// subscribed connection hears.
@Suite("Redis subscriber's buffer and replies", .defaultPass)
struct RedisSubscriberBufferTests {
    private func message(_ text: String) -> RedisSubscriber.Event {
        .message(RedisPubSubMessage(channel: "c", payload: Array(text.utf8)))
    }

    private func text(_ event: RedisSubscriber.Event?) -> String {
        switch event {
        case .message(let message): String(decoding: message.payload, as: UTF8.self)
        case .overflowed(let dropped): "overflowed \(dropped)"
        case .subscribed: "subscribed"
        case .reconnected: "reconnected"
        case .disconnected: "disconnected"
        case nil: "end"
        }
    }

    @Test("Events come out in order; a full buffer drops the oldest and says so once, ahead of what is left")
    func overflow() async {
        let buffer = RedisSubscriberBuffer(limit: 3)
        buffer.push(.subscribed)
        buffer.push(message("a"))
        #expect(text(await buffer.next()) == "subscribed")
        for name in ["b", "c", "d", "e", "f"] { buffer.push(message(name)) }
        #expect(buffer.dropped == 3)
        #expect(text(await buffer.next()) == "overflowed 3")
        #expect(text(await buffer.next()) == "d")
        // Another burst: a new notice counts only what went since the last.
        for name in ["g", "h", "i"] { buffer.push(message(name)) }
        #expect(text(await buffer.next()) == "overflowed 2")
        var rest: [String] = []
        for _ in 0..<3 { rest.append(text(await buffer.next())) }
        #expect(rest == ["g", "h", "i"])
        #expect(buffer.dropped == 5)
    }

    @Test("Many times the limit through a small buffer, never full: nothing dropped, order kept")
    func manyThrough() async {
        let buffer = RedisSubscriberBuffer(limit: 4)
        var taken: [String] = []
        for round in 0..<300 {
            for index in 0..<3 { buffer.push(message("\(round * 3 + index)")) }
            for _ in 0..<3 { taken.append(text(await buffer.next())) }
        }
        #expect(taken == (0..<900).map { "\($0)" })
        #expect(buffer.dropped == 0)
    }

    @Test("A waiting consumer gets the next event at once; finish ends it after what is queued; cancellation ends a wait")
    func waitingAndEnding() async throws {
        let buffer = RedisSubscriberBuffer(limit: 8)
        let waiting = Task { await buffer.next() }
        try await Task.sleep(for: .milliseconds(50))
        buffer.push(message("x"))
        #expect(text(await waiting.value) == "x")

        buffer.push(message("y"))
        buffer.finish()
        buffer.push(message("ignored"))
        #expect(text(await buffer.next()) == "y")
        #expect(text(await buffer.next()) == "end")
        #expect(text(await buffer.next()) == "end")

        let idle = RedisSubscriberBuffer(limit: 8)
        let cancelled = Task { await idle.next() }
        try await Task.sleep(for: .milliseconds(50))
        cancelled.cancel()
        #expect(text(await cancelled.value) == "end")
    }

    @Test("What a subscribed connection hears: messages, confirmations, PONG; anything else throws naming the command")
    func pushedReplies() throws {
        func bulk(_ text: String) -> RedisValue { .bulk(Array(text.utf8)) }
        func read(_ reply: RedisValue) throws(RedisError) -> RedisSubscriber.PushedReply {
            try RedisSubscriber.PushedReply(reply, server: "h:1", command: "SUBSCRIBE")
        }
        guard case .message(let plain) = try read(.array([bulk("message"), bulk("c"), .bulk([0, 1])])) else { throw Unexpected() }
        #expect(plain == RedisPubSubMessage(channel: "c", payload: [0, 1]))
        guard case .message(let shard) = try read(.array([bulk("smessage"), bulk("{x}"), bulk("p")])) else { throw Unexpected() }
        #expect(shard.isShard && shard.channel == "{x}")
        guard case .subscribed(let channel) = try read(.array([bulk("ssubscribe"), bulk("{x}"), .integer(1)])) else { throw Unexpected() }
        #expect(channel == RedisSubscriber.Channel(name: "{x}", isShard: true))
        guard case .unsubscribed = try read(.array([bulk("sunsubscribe"), bulk("{x}"), .integer(0)])) else { throw Unexpected() }
        guard case .pong = try read(.array([bulk("pong"), bulk("")])) else { throw Unexpected() }

        let refused = #expect(throws: RedisError.self) { try read(.error("NOPERM this user has no permissions")) }
        #expect(refused?.isServerError == true)
        for odd: RedisValue in [
            .status("OK"), .array([bulk("message"), bulk("c")]), .array([bulk("pmessage"), bulk("p"), bulk("c")]),
            .array([bulk("subscribe"), bulk("c"), bulk("1")]), .array([.integer(1), bulk("c"), bulk("p")]),
        ] {
            let error = #expect(throws: RedisError.self) { try read(odd) }
            #expect(error?.description.contains("SUBSCRIBE failed: unexpected reply") == true)
        }
    }

    private struct Unexpected: Error {}
}

@testable import RedisClient
import TestSupport
import Testing

/// The cluster client's pure parts: slots, where a command's keys are, redirections, the slot
/// map, when the map is read again, and calls refused before anything is sent.
@Suite("Redis Cluster routing", .defaultPass)
struct ClusterRoutingTests {
    @Test("Slots as Redis computes them (CRC16/XMODEM mod 16384; values from CLUSTER KEYSLOT)")
    func slots() {
        #expect(RedisClusterClient.slot(of: "foo") == 12182)
        #expect(RedisClusterClient.slot(of: "123456789") == 12739)  // CRC16/XMODEM's check value 0x31C3
        #expect(RedisClusterClient.slot(of: "") == 0)
        #expect(RedisClusterClient.slot(of: "{user1000}.following") == 3443)
        #expect(RedisClusterClient.slot(of: "{user1000}.following") == RedisClusterClient.slot(of: "{user1000}.followers"))
        #expect(RedisClusterClient.slot(of: "{endpoint-a}:jobs") == RedisClusterClient.slot(of: "endpoint-a"))
    }

    @Test("Hash tags exactly as Redis reads them: first {, first } after it, not empty")
    func hashTags() {
        // An empty tag: the whole key is hashed.
        #expect(RedisClusterClient.slot(of: "{}foo") == 9500)
        #expect(RedisClusterClient.slot(of: "{}foo") != RedisClusterClient.slot(of: "foo"))
        // The first { meets an empty tag: the whole key, although {bar} follows.
        #expect(RedisClusterClient.slot(of: "foo{}{bar}") == 8363)
        #expect(RedisClusterClient.slot(of: "foo{}{bar}") != RedisClusterClient.slot(of: "bar"))
        // From the first { to the first }: the tag is "{bar".
        #expect(RedisClusterClient.slot(of: "foo{{bar}}zap") == RedisClusterClient.slot(of: "{bar"))
        #expect(RedisClusterClient.slot(of: "foo{{bar}}zap") == 4015)
        // Only the first tag counts.
        #expect(RedisClusterClient.slot(of: "foo{bar}{zap}") == RedisClusterClient.slot(of: "bar"))
        // No closing brace: the whole key.
        #expect(RedisClusterClient.slot(of: "foo{bar") == HashSlot.of(Array("foo{bar".utf8)))
        #expect(RedisClusterClient.slot(of: "foo{bar") != RedisClusterClient.slot(of: "bar"))
    }

    private func keys(_ command: RedisCommand) -> [String] {
        CommandKeys.keys(of: command).map { String(decoding: $0.bytes, as: UTF8.self) }
    }

    @Test("The keys of raw commands the fleet sends, found by position")
    func commandKeys() {
        #expect(keys(["GET", "k"]) == ["k"])
        #expect(keys(["set", "k", "v", "PX", "100"]) == ["k"])
        #expect(keys(["DEL", "a", "b"]) == ["a", "b"])
        #expect(keys(["EXISTS", "a"]) == ["a"])
        #expect(keys(["HINCRBY", "h", "f", "1"]) == ["h"])
        #expect(keys(["XADD", "s", "*", "f", "v"]) == ["s"])
        #expect(keys(["XACK", "s", "g", "1-0"]) == ["s"])
        #expect(keys(["XAUTOCLAIM", "s", "g", "c", "100", "0-0", "COUNT", "10"]) == ["s"])
        #expect(keys(["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"]) == ["s"])
        #expect(keys(["EVALSHA", "abc", "2", "k1", "k2", "arg"]) == ["k1", "k2"])
        #expect(keys(["EVAL", "return 1", "0", "arg"]) == [])
        #expect(keys(["EVAL", "return 1", "5", "k"]) == [])  // more keys announced than given: left to the server
        // A group named "streams" is no keyword: options are read in order, as Redis does.
        #expect(keys(["XREADGROUP", "GROUP", "streams", "c", "COUNT", "10", "BLOCK", "5", "NOACK", "STREAMS", "s1", "s2", ">", ">"]) == ["s1", "s2"])
        #expect(keys(["XREAD", "COUNT", "1", "STREAMS", "s", "0"]) == ["s"])
        #expect(keys(["SPUBLISH", "channel", "message"]) == ["channel"])
        #expect(keys(["PUBLISH", "channel", "message"]) == [])
        #expect(keys(["PING"]) == [])
        #expect(keys(["SOMETHING", "k"]) == [])
    }

    @Test("MOVED and ASK replies read; other errors are not redirections")
    func redirections() throws {
        let from = ClusterNodeAddress(host: "10.0.0.1", port: 7000)
        let moved = try #require(ClusterRedirection(errorReply: "MOVED 3999 127.0.0.1:6381", from: from))
        #expect(moved.kind == .moved && moved.slot == 3999 && moved.node == ClusterNodeAddress(host: "127.0.0.1", port: 6381))
        let ask = try #require(ClusterRedirection(errorReply: "ASK 12182 127.0.0.1:30103", from: from))
        #expect(ask.kind == .ask && ask.slot == 12182 && ask.node.port == 30103)
        // Redis 7 leaves out a host it does not know: the node that answered.
        #expect(ClusterRedirection(errorReply: "MOVED 1 :6381", from: from)?.node == ClusterNodeAddress(host: "10.0.0.1", port: 6381))
        let ipv6 = try #require(ClusterRedirection(errorReply: "MOVED 1 ::1:7001", from: from))
        #expect(ipv6.node.host == "::1" && ipv6.node.description == "[::1]:7001")
        #expect(ClusterRedirection(errorReply: "ERR unknown command", from: from) == nil)
        #expect(ClusterRedirection(errorReply: "MOVED x 127.0.0.1:1", from: from) == nil)
        #expect(ClusterRedirection(errorReply: "MOVED 16384 127.0.0.1:1", from: from) == nil)
        #expect(ClusterRedirection.isRedirection(.error("ASK 1 h:1")) && !ClusterRedirection.isRedirection(.error("TRYAGAIN x")))
    }

    @Test("A CLUSTER SLOTS reply (Redis 7's shape) read into a slot map; MOVED patches one slot")
    func slotMap() throws {
        func node(_ host: RedisValue, _ port: Int64, _ id: String) -> RedisValue {
            .array([host, .integer(port), .bulk(Array(id.utf8)), .array([])])
        }
        let reply = RedisValue.array([
            .array([.integer(0), .integer(5460), node(.bulk(Array("127.0.0.1".utf8)), 30101, "a"), node(.bulk(Array("127.0.0.1".utf8)), 30104, "r")]),
            .array([.integer(5461), .integer(10922), node(.null, 30102, "b")]),
            .array([.integer(10923), .integer(16383), node(.bulk(Array("?".utf8)), 30103, "c")]),
        ])
        let answered = ClusterNodeAddress(host: "192.168.1.9", port: 30101)
        var map = try ClusterSlotMap(slotsReply: reply, answeredBy: answered)
        #expect(map.masters.count == 3)  // the replica is no master
        #expect(map.master(of: 0)?.description == "127.0.0.1:30101")
        #expect(map.master(of: 5460)?.description == "127.0.0.1:30101")
        // An unknown host (null, "" or "?") is the one the answer came from.
        #expect(map.master(of: 5461)?.description == "192.168.1.9:30102")
        #expect(map.master(of: 16383)?.description == "192.168.1.9:30103")
        map.assign(7000, to: ClusterNodeAddress(host: "127.0.0.1", port: 30101))
        #expect(map.master(of: 7000)?.port == 30101 && map.master(of: 7001)?.port == 30102)
        let partial = try ClusterSlotMap(slotsReply: .array([.array([.integer(0), .integer(9), node(.bulk(Array("h".utf8)), 1, "a")])]), answeredBy: answered)
        #expect(partial.master(of: 10) == nil)
        #expect(throws: RedisError.self) { try ClusterSlotMap(slotsReply: .array([.integer(1)]), answeredBy: answered) }
        #expect(throws: RedisError.self) {
            try ClusterSlotMap(slotsReply: .array([.array([.integer(0), .integer(16384), node(.null, 1, "a")])]), answeredBy: answered)
        }
    }

    @Test("The map is read by one read at a time, and not again within 100 ms unless required")
    func refreshState() {
        var state = ClusterRefreshState<Int>(minimumInterval: .milliseconds(100))
        var started = 0
        let start = ContinuousClock.now
        func decide(_ at: Duration, required: Bool = false) -> String {
            switch state.request(at: start + at, required: required, start: { started += 1; return started }) {
            case .join(let read): return "join \(read)"
            case .started(let read): return "started \(read)"
            case .skip: return "skip"
            }
        }
        #expect(decide(.zero) == "started 1")
        #expect(decide(.milliseconds(10)) == "join 1")
        #expect(decide(.milliseconds(20), required: true) == "join 1")
        state.ended(at: start + .milliseconds(30))
        #expect(decide(.milliseconds(80)) == "skip")
        #expect(decide(.milliseconds(129)) == "skip")
        #expect(decide(.milliseconds(90), required: true) == "started 2")
        state.ended(at: start + .milliseconds(100))
        #expect(decide(.milliseconds(200)) == "started 3")
        #expect(started == 3)
    }

    @Test("Keys of different slots are refused before anything is sent, naming the keys and the hash tag fix")
    func crossSlotRefused() async throws {
        // Nothing listens at the seed: a refusal that reached the network would be a connect error.
        let redis = try RedisClusterClient(configuration: RedisConfiguration(port: RedisTestServer.unusedPort()))
        defer { Task { await redis.shutdown() } }
        let error = await #expect(throws: RedisError.self) { try await redis.delete(["{endpoint-a}:x", "{endpoint-b}:x"]) }
        let text = error?.description ?? ""
        #expect(text.contains("{endpoint-a}:x (slot 7239)") && text.contains("{endpoint-b}:x (slot 11300)"))
        #expect(text.contains("hash tag") && text.contains("DEL"))
        #expect(error?.isUnavailable == false && error?.isServerError == false)
        await #expect(throws: RedisError.self) { try await redis.eval("return 1", keys: ["a", "b"]) }
        let pipeline = await #expect(throws: RedisError.self) {
            try await redis.pipeline([["SET", "{endpoint-a}:x", "1"], ["GET", "{endpoint-b}:x"]])
        }
        #expect(pipeline?.description.contains("pipeline") == true)
        // The same call within one slot gets as far as the network (and finds nobody there).
        let reached = await #expect(throws: RedisError.self) { try await redis.delete(["{endpoint-a}:x", "{endpoint-a}:y"]) }
        #expect(reached?.isUnavailable == true)
        #expect(reached?.description.contains("CLUSTER SLOTS") == true)
    }

    @Test("A cluster has only database 0: another is refused when the client is made")
    func databaseRefused() throws {
        let error = #expect(throws: RedisError.self) { try RedisClusterClient(configuration: RedisConfiguration(url: "redis://127.0.0.1:7000/2")) }
        #expect(error?.description.contains("database") == true)
    }
}

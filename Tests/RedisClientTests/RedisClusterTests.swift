import RedisClient
import TestSupport
import Testing

/// Against a real cluster of three masters (`redis-server --cluster-enabled yes`, joined by
/// `redis-cli --cluster create`) started for each test. Two endpoints keep their keys under their
/// own hash tag, `{endpoint-a}` and `{endpoint-b}`, which land on different masters.
@Suite(
    "Redis Cluster client against a three-master cluster", .tags(.servers), .pass(.servers),
    .enabled(if: RedisClusterTestServer.isInstalled, "redis-server and redis-cli are installed by scripts/test.sh"))
struct RedisClusterTests {
    private let endpointA = "{endpoint-a}"
    private let endpointB = "{endpoint-b}"

    private func client(_ server: RedisClusterTestServer, _ change: (inout RedisConfiguration) -> Void = { _ in }) throws -> RedisClusterClient {
        var configuration = try RedisConfiguration(url: server.url)
        change(&configuration)
        return try RedisClusterClient(configuration: configuration)
    }

    private func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

    /// The typed commands, written once for any client: the same code runs on one server and on
    /// a cluster.
    private func roundTrip(_ redis: some RedisCommands, prefix: String) async throws {
        try await redis.set("\(prefix):value", bytes("v"), expiresIn: .seconds(100))
        #expect(try await redis.get("\(prefix):value") == bytes("v"))
        #expect(try await redis.set("\(prefix):value", bytes("w"), onlyIfAbsent: true) == false)
        #expect(try await redis.increment("\(prefix):count") == 1)
        #expect(try await redis.expire("\(prefix):count", after: .milliseconds(30_500)))
        let left = try #require(try await redis.timeToLive("\(prefix):count"))
        #expect(left > .zero && left <= .milliseconds(30_500))
        let ttl = try await redis.ttl("\(prefix):value")
        #expect((90...100).contains(ttl))
        let script = "return redis.call('INCRBY', KEYS[1], ARGV[1]) + redis.call('EXISTS', KEYS[2])"
        #expect(try await redis.eval(script, keys: ["\(prefix):count", "\(prefix):value"], arguments: ["4"]) == .integer(6))
        // Again, by its SHA-1 now.
        #expect(try await redis.eval(script, keys: ["\(prefix):count", "\(prefix):value"], arguments: ["4"]) == .integer(10))
        #expect(try await redis.delete(["\(prefix):value", "\(prefix):count", "\(prefix):nothing"]) == 2)
        try await redis.ping()
    }

    @Test("Slots computed by the client equal the server's CLUSTER KEYSLOT")
    func slotsMatchServer() throws {
        let server = try RedisClusterTestServer()
        let keys = [
            "foo", "", "{user1000}.following", "{}foo", "foo{}{bar}", "foo{{bar}}zap", "foo{bar}{zap}", "{endpoint-a}:jobs",
            "{endpoint-b}:results", "a{b", "}{", "job:12345", "日本語{キー}", "{{}}", "x{y}z{w}",
        ]
        for key in keys {
            #expect(RedisClusterClient.slot(of: key) == (try server.keySlot(key)), "key \(key)")
        }
    }

    @Test("Two endpoints on different masters: typed commands, EVAL, pipelines and raw sends each on its own master")
    func twoEndpoints() async throws {
        let server = try RedisClusterTestServer()
        let redis = try client(server)
        defer { Task { await redis.shutdown() } }
        let portA = try server.master(ofSlot: server.keySlot(endpointA))
        let portB = try server.master(ofSlot: server.keySlot(endpointB))
        #expect(portA != portB)
        #expect(try await redis.node(forKey: "\(endpointA):jobs") == "127.0.0.1:\(portA)")
        #expect(try await redis.node(forKey: "\(endpointB):jobs") == "127.0.0.1:\(portB)")

        for endpoint in [endpointA, endpointB] {
            try await roundTrip(redis, prefix: endpoint)
            try await redis.set("\(endpoint):status", bytes("ready"))
            let replies = try await redis.pipeline([
                ["INCR", RedisArgument("\(endpoint):n")], ["GET", RedisArgument("\(endpoint):status")],
                ["HSET", RedisArgument("\(endpoint):job"), "state", "queued"], ["HGET", RedisArgument("\(endpoint):job"), "state"],
                ["INCR", RedisArgument("\(endpoint):status")],
            ])
            #expect(replies.count == 5)
            #expect(replies[0] == .integer(1) && replies[1] == .bulk(bytes("ready")))
            #expect(replies[2] == .integer(1) && replies[3] == .bulk(bytes("queued")))
            guard case .error = replies[4] else { Issue.record("an error reply stays a value in a pipeline"); continue }
            // Raw sends find their key by position (no MOVED needed: counted on the other master below).
            let id = try await redis.send(["XADD", RedisArgument("\(endpoint):jobs"), "*", "input", "x"])
            #expect(id.string?.contains("-") == true)
            #expect(try await redis.send(["XLEN", RedisArgument("\(endpoint):jobs")]) == .integer(1))
            #expect(try await redis.send(["TYPE", RedisArgument("\(endpoint):jobs")]) == .status("stream"))
        }
        // Each endpoint's keys are on its own master, as the server itself says.
        #expect(try server.cli(portA, ["GET", "\(endpointA):status"]) == "ready")
        #expect(try server.cli(portB, ["GET", "\(endpointB):status"]) == "ready")
        #expect(try server.cli(portA, ["EXISTS", "\(endpointA):jobs"]) == "1")
        // Every command went straight to its master: none was ever sent to another.
        #expect(try server.commandCount(portA, "xadd") == 1 && server.commandCount(portB, "xadd") == 1)
        let seed = server.ports[0]
        #expect(seed != portA && seed != portB)
        #expect(try server.commandCount(seed, "get") == 0 && server.commandCount(seed, "xadd") == 0)
        // An error reply of a single command throws, naming the node that answered.
        let error = await #expect(throws: RedisError.self) { try await redis.increment("\(endpointB):status") }
        #expect(error?.isServerError == true && error?.description.contains("127.0.0.1:\(portB)") == true)
    }

    @Test("MOVED: after a slot moves to another master the client follows, and later calls go straight there")
    func moved() async throws {
        let server = try RedisClusterTestServer()
        let redis = try client(server)
        defer { Task { await redis.shutdown() } }
        let key = "\(endpointA):state"
        try await redis.set(key, bytes("one"))
        try await redis.set("\(endpointA):other", bytes("two"))
        let slot = RedisClusterClient.slot(of: key)
        let from = try server.master(ofSlot: slot)
        let to = try #require(server.ports.first(where: { $0 != from }))
        try server.moveSlot(slot, from: from, to: to)
        #expect(try server.master(ofSlot: slot) == to)

        let before = try server.commandCount(from, "get")
        #expect(try await redis.get(key) == bytes("one"))
        // One GET reached the old master (answered MOVED); the client's map names the new one now.
        #expect(try server.commandCount(from, "get") == before + 1)
        #expect(try await redis.node(forKey: key) == "127.0.0.1:\(to)")
        for _ in 0..<5 { #expect(try await redis.get("\(endpointA):other") == bytes("two")) }
        let replies = try await redis.pipeline([["GET", RedisArgument(key)], ["INCR", RedisArgument("\(endpointA):n")]])
        #expect(replies == [.bulk(bytes("one")), .integer(1)])
        #expect(try await redis.eval("return redis.call('GET', KEYS[1])", keys: [key]) == .bulk(bytes("one")))
        #expect(try server.commandCount(from, "get") == before + 1)
        #expect(try server.commandCount(from, "incr") == 0 && server.commandCount(from, "evalsha") == 0)

        // A pipeline whose slot moved is redirected as a whole and answered in order.
        let slotB = RedisClusterClient.slot(of: endpointB)
        try await redis.set("\(endpointB):x", bytes("x"))
        let fromB = try server.master(ofSlot: slotB)
        let toB = try #require(server.ports.first(where: { $0 != fromB }))
        try server.moveSlot(slotB, from: fromB, to: toB)
        let moved = try await redis.pipeline([
            ["GET", RedisArgument("\(endpointB):x")], ["SET", RedisArgument("\(endpointB):y"), "y"], ["GET", RedisArgument("\(endpointB):y")],
        ])
        #expect(moved == [.bulk(bytes("x")), .status("OK"), .bulk(bytes("y"))])
        #expect(try server.cli(toB, ["GET", "\(endpointB):y"]) == "y")
    }

    @Test("ASK: during a migration a key that went ahead is read with ASKING on the target; the map stays")
    func ask() async throws {
        let server = try RedisClusterTestServer()
        let redis = try client(server)
        defer { Task { await redis.shutdown() } }
        let moved = "\(endpointB):moved"
        let stays = "\(endpointB):stays"
        try await redis.set(moved, bytes("m"))
        try await redis.set(stays, bytes("s"))
        let slot = RedisClusterClient.slot(of: endpointB)
        let from = try server.master(ofSlot: slot)
        let to = try #require(server.ports.first(where: { $0 != from }))
        try server.beginMigration(slot: slot, from: from, to: to)
        try server.migrate(keys: [moved], from: from, to: to)

        let asking = try server.commandCount(to, "asking")
        #expect(try await redis.get(moved) == bytes("m"))
        #expect(try server.commandCount(to, "asking") == asking + 1)
        #expect(try await redis.get(stays) == bytes("s"))
        // ASK is for one command: the slot is still the source's, in the client's map too.
        #expect(try await redis.node(forKey: moved) == "127.0.0.1:\(from)")
        #expect(try server.commandCount(to, "asking") == asking + 1)
        // A new key during the migration is made on the target (the source no longer takes it).
        try await redis.set("\(endpointB):new", bytes("n"))
        let onTarget = try server.cli(to, ["CLUSTER", "GETKEYSINSLOT", String(slot), "10"]).split(whereSeparator: \.isNewline).map(String.init)
        #expect(Set(onTarget) == Set([moved, "\(endpointB):new"]))
        // One pipeline over both nodes: the source answers what it has, the rest follows ASK.
        let replies = try await redis.pipeline([["GET", RedisArgument(moved)], ["GET", RedisArgument(stays)], ["INCR", RedisArgument("\(endpointB):n")]])
        #expect(replies == [.bulk(bytes("m")), .bulk(bytes("s")), .integer(1)])
        // A script on a key that went ahead runs on the target (which has to be sent the script's text).
        #expect(try await redis.eval("return redis.call('GET', KEYS[1])", keys: [moved]) == .bulk(bytes("m")))

        // The migration ends: the rest moves, and the source answers MOVED from now on.
        try server.migrate(keys: [stays], from: from, to: to)
        try server.finishMigration(slot: slot, from: from, to: to)
        #expect(try await redis.get(stays) == bytes("s"))
        #expect(try await redis.node(forKey: stays) == "127.0.0.1:\(to)")
    }

    @Test("Keys of two endpoints in one call are refused up front, naming the keys and the hash tag fix")
    func crossSlot() async throws {
        let server = try RedisClusterTestServer()
        let redis = try client(server)
        defer { Task { await redis.shutdown() } }
        try await redis.set("\(endpointA):x", bytes("1"))
        let error = await #expect(throws: RedisError.self) { try await redis.delete(["\(endpointA):x", "\(endpointB):x"]) }
        let text = error?.description ?? ""
        #expect(text.contains("\(endpointA):x") && text.contains("\(endpointB):x") && text.contains("hash tag"))
        await #expect(throws: RedisError.self) {
            try await redis.eval("return 1", keys: ["\(endpointA):x", "\(endpointB):x"])
        }
        await #expect(throws: RedisError.self) {
            try await redis.pipeline([["GET", RedisArgument("\(endpointA):x")], ["GET", RedisArgument("\(endpointB):x")]])
        }
        await #expect(throws: RedisError.self) {
            try await redis.send(["MGET", RedisArgument("\(endpointA):x"), RedisArgument("\(endpointB):x")])
        }
        // Nothing was sent: no node saw a DEL, an EVAL or an MGET, and the key is still there.
        for port in server.ports {
            #expect(try server.commandCount(port, "del") == 0 && server.commandCount(port, "eval") == 0)
            #expect(try server.commandCount(port, "evalsha") == 0 && server.commandCount(port, "mget") == 0)
        }
        #expect(try await redis.get("\(endpointA):x") == bytes("1"))
        // Within one endpoint's tag, the same calls run.
        #expect(try await redis.delete(["\(endpointA):x", "\(endpointA):y"]) == 1)
    }

    @Test("A server without cluster mode is named as such, with what to use instead")
    func notACluster() async throws {
        let server = try RedisTestServer()
        let redis = try RedisClusterClient(configuration: RedisConfiguration(url: server.url))
        defer { Task { await redis.shutdown() } }
        let error = await #expect(throws: RedisError.self) { try await redis.ping() }
        #expect(error?.description.contains("cluster support disabled") == true)
        #expect(error?.description.contains("use RedisClient") == true)
    }

    @Test("A killed master: calls for its slots fail naming it, within the timeout; the other endpoint keeps working")
    func killedNode() async throws {
        let server = try RedisClusterTestServer(extra: ["--cluster-require-full-coverage", "no"])
        let redis = try client(server) {
            $0.connectTimeout = .seconds(1)
            $0.commandTimeout = .seconds(2)
        }
        defer { Task { await redis.shutdown() } }
        let keyA = "\(endpointA):state"
        let keyB = "\(endpointB):state"
        try await redis.set(keyA, bytes("a"))
        try await redis.set(keyB, bytes("b"))
        let portB = try server.master(ofSlot: server.keySlot(endpointB))
        server.stop(port: portB)

        let started = ContinuousClock.now
        let error = await #expect(throws: RedisError.self) { try await redis.get(keyB) }
        #expect(ContinuousClock.now - started < .seconds(2))
        #expect(error?.isUnavailable == true)
        let text = error?.description ?? ""
        #expect(text.contains("127.0.0.1:\(portB)") && text.contains("slot \(RedisClusterClient.slot(of: endpointB))"))
        #expect(text.contains("GET"))
        // Again (now without a pooled connection to find dropped): the same clear failure.
        let again = await #expect(throws: RedisError.self) { try await redis.set(keyB, bytes("c")) }
        #expect(again?.description.contains("127.0.0.1:\(portB)") == true)

        // The other endpoint, its scripts and pipelines, and keyless calls are unaffected.
        #expect(try await redis.get(keyA) == bytes("a"))
        #expect(try await redis.eval("return redis.call('INCR', KEYS[1])", keys: ["\(endpointA):n"]) == .integer(1))
        let replies = try await redis.pipeline([["INCR", RedisArgument("\(endpointA):n")], ["GET", RedisArgument(keyA)]])
        #expect(replies == [.integer(2), .bulk(bytes("a"))])
        // Keyless calls go to the masters in turn, the dead one among them: each still succeeds.
        for _ in 0..<6 { try await redis.ping() }
    }
}

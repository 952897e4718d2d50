import EndpointAPI
import Logging
import RedisClient
import TestSupport
import Testing
import WorkerJSON
@testable import WorkerFleet

/// The fleet's steps against a real redis-server: each guarantee of docs/fleet.md at the level
/// of the scripts (the processes' tests are Tests/python/test_fleet.py).
@Suite(
    "Fleet steps on Redis", .tags(.servers), .pass(.servers),
    .enabled(if: RedisTestServer.isInstalled, "redis-server is installed by scripts/test.sh"))
struct FleetStoreTests {
    static func store(_ url: String, endpoint: String = "t", lease: Duration = .seconds(15), maxAttempts: Int = 3) throws -> FleetStore {
        var settings = FleetSettings(redis: try RedisConfiguration(url: url), endpoint: endpoint)
        settings.lease = lease
        settings.heartbeat = .milliseconds(100)
        settings.maxAttempts = maxAttempts
        return FleetStore(redis: FleetRedis(settings: settings, logger: Logger(label: "fleet-test")))
    }

    static func submit(_ store: FleetStore, _ id: String, input: JSONValue = ["n": 1], sync: Bool = false, key: String? = nil, limit: Int = 0)
        async throws -> FleetStore.Submitted
    {
        let job = try JSONValue.object(["id": .string(id), "input": input]).serialized()
        return try await store.submit(
            id: id, job: job, inputBytes: job.count, sync: sync, ttl: .seconds(60), retention: .seconds(60),
            executionTimeout: .seconds(60), queueLimit: limit, idempotencyKey: key)
    }

    static func result(_ value: JSONValue) throws -> [UInt8] { try JSONValue.object(["output": value]).serialized() }

    @Test("A job goes queued → running → completed; its record reports as /status does, and stats count it once")
    func lifecycle() async throws {
        let server = try RedisTestServer()
        let store = try Self.store(server.url)
        #expect(try await Self.submit(store, "a") == .queued)
        #expect(try await store.report("a")?.status == .inQueue)
        let started = try await store.take(consumer: "w1", count: 4, reclaim: true)
        #expect(started.map(\.id) == ["a"] && started[0].attempt == 1)
        #expect(try JSONValue.parse(started[0].job)["input"] == ["n": 1])
        let running = try #require(try await store.report("a"))
        #expect(running.status == .inProgress && running.workerID == "w1")
        #expect(try await store.finish("a", attempt: 1, status: .completed, result: Self.result("done")).isRecorded)
        let done = try #require(try await store.report("a"))
        #expect(done.status == .completed && done.output == "done")
        // A second final write of the same run is refused: one final result per job.
        #expect(try await store.finish("a", attempt: 1, status: .failed, result: Self.result("again")) == .stale("COMPLETED 1"))
        #expect(try await store.report("a")?.output == "done")
        let health = try await store.health()
        #expect(health["jobs"]?["completed"] == 1 && health["jobs"]?["inQueue"] == 0 && health["jobs"]?["inProgress"] == 0)
        #expect(try await store.report("unknown") == nil)
    }

    @Test("A worker presumed dead: its job runs again after the lease, and its late result is discarded")
    func fencing() async throws {
        let server = try RedisTestServer()
        let store = try Self.store(server.url, lease: .milliseconds(300))
        _ = try await Self.submit(store, "b")
        let first = try await store.take(consumer: "dead", count: 1, reclaim: true)
        #expect(first.first?.attempt == 1)
        // Within the lease nobody else gets it.
        #expect(try await store.take(consumer: "w2", count: 1, reclaim: true).isEmpty)
        try await Task.sleep(for: .milliseconds(400))
        let second = try await store.take(consumer: "w2", count: 1, reclaim: true)
        #expect(second.map(\.id) == ["b"] && second.first?.attempt == 2)
        // The first worker comes back with its result: refused, the record untouched.
        #expect(try await store.finish("b", attempt: 1, status: .completed, result: Self.result("late")) == .stale("IN_PROGRESS 2"))
        #expect(try await store.update("b", attempt: 1, chunk: true, value: Array("1".utf8)) == false)
        // Its renewal tells it the job is no longer its own.
        #expect(try await store.renew(consumer: "dead", held: [("b", 1)], running: 1, concurrency: 1) == ["b"])
        #expect(try await store.renew(consumer: "w2", held: [("b", 2)], running: 1, concurrency: 1) == [])
        #expect(try await store.finish("b", attempt: 2, status: .completed, result: Self.result("right")).isRecorded)
        #expect(try await store.report("b")?.output == "right")
    }

    @Test("After /retry the runs before stay fenced off: a worker presumed dead cannot finish the retried job")
    func retryKeepsTheFence() async throws {
        let server = try RedisTestServer()
        let store = try Self.store(server.url, lease: .milliseconds(200), maxAttempts: 1)
        _ = try await Self.submit(store, "r")
        #expect(try await store.take(consumer: "stale", count: 1, reclaim: true).first?.attempt == 1)
        try await Task.sleep(for: .milliseconds(250))
        // Its one start used up: FAILED, then retried by a client.
        #expect(try await store.take(consumer: "w2", count: 1, reclaim: true).isEmpty)
        #expect(try await store.report("r")?.status == .failed)
        if case .refused = try await store.retry("r", ttl: .seconds(60)) { Issue.record("FAILED is retried") }
        let again = try await store.take(consumer: "w2", count: 1, reclaim: true)
        #expect(again.first?.attempt == 2, "attempts keep growing across a retry")
        #expect(try await store.finish("r", attempt: 1, status: .completed, result: Self.result("stale")) == .stale("IN_PROGRESS 2"))
        #expect(try await store.renew(consumer: "stale", held: [("r", 1)], running: 1, concurrency: 1) == ["r"])
        #expect(try await store.stop("r", as: .timedOut, error: "late", attempt: 1) == .inProgress)
        #expect(try await store.finish("r", attempt: 2, status: .completed, result: Self.result("fresh")).isRecorded)
        #expect(try await store.report("r")?.output == "fresh")
    }

    @Test("Jobs that expire while queued leave the queue's counts, so the byte budget never wedges")
    func expiredWhileQueued() async throws {
        let server = try RedisTestServer()
        let store = try Self.store(server.url)
        let big: JSONValue = ["text": .string(String(repeating: "x", count: 1000))]
        let job = try JSONValue.object(["id": "e1", "input": big]).serialized()
        _ = try await store.submit(
            id: "e1", job: job, inputBytes: job.count, sync: false, ttl: .milliseconds(50), retention: .seconds(60),
            executionTimeout: .seconds(60), queueLimit: 1500, idempotencyKey: nil)
        try await Task.sleep(for: .milliseconds(100))
        #expect(try await store.report("e1") == nil, "past its TTL the job is gone")
        #expect(try await store.take(consumer: "w", count: 4, reclaim: true).isEmpty)
        let health = try await store.health()
        #expect(health["jobs"]?["inQueue"] == 0)
        #expect(try await Self.submit(store, "e2", input: big, limit: 1500) == .queued, "the budget is free again")
    }

    @Test("A stats field that is not a number, or a bad reclaim cursor: named, or mended")
    func damagedStats() async throws {
        let server = try RedisTestServer()
        let store = try Self.store(server.url, lease: .milliseconds(100))
        let commands = try await store.commands()
        _ = try await commands.send(["HSET", RedisArgument(store.keys.stats), "queued_bytes", "abc"], keys: [])
        await #expect { try await Self.submit(store, "d1") } throws: { "\($0)".contains("queued_bytes") && "\($0)".contains(store.keys.stats) }
        _ = try await commands.send(["HSET", RedisArgument(store.keys.stats), "queued_bytes", "0", "claim_cursor", "garbage"], keys: [])
        #expect(try await Self.submit(store, "d2") == .queued)
        _ = try await store.take(consumer: "dead", count: 1, reclaim: true)
        try await Task.sleep(for: .milliseconds(150))
        _ = try await commands.send(["HSET", RedisArgument(store.keys.stats), "claim_cursor", "garbage"], keys: [])
        #expect(try await store.take(consumer: "w", count: 1, reclaim: true).first?.attempt == 2, "reclaiming goes on")
    }

    @Test("A gateway with a free slot starts the oldest queued job as it queues its own; the counts stay exact")
    func startedAsQueued() async throws {
        let server = try RedisTestServer()
        let store = try Self.store(server.url)
        func submit(_ id: String) async throws -> [FleetStore.Started] {
            let job = try JSONValue.object(["id": .string(id), "input": ["n": 1]]).serialized()
            return try await store.submit(
                id: id, job: job, inputBytes: job.count, sync: true, ttl: .seconds(60), retention: .seconds(60),
                executionTimeout: .seconds(60), queueLimit: 0, idempotencyKey: nil, startingFor: "gateway"
            ).started
        }
        #expect(try await submit("own").map(\.id) == ["own"])
        var health = try await store.health()
        #expect(health["jobs"]?["inQueue"] == 0 && health["jobs"]?["inProgress"] == 1)
        #expect(try await store.report("own")?.workerID == "gateway")
        // An older job waits: it goes first, and the new one stays queued.
        _ = try await Self.submit(store, "older")
        #expect(try await submit("newer").map(\.id) == ["older"])
        health = try await store.health()
        #expect(health["jobs"]?["inQueue"] == 1 && health["jobs"]?["inProgress"] == 2)
        #expect(try await store.take(consumer: "w", count: 4, reclaim: false).map(\.id) == ["newer"])
        health = try await store.health()
        #expect(health["jobs"]?["inQueue"] == 0)
        let stats = try await store.commands().send(["HGET", RedisArgument(store.keys.stats), "queued_bytes"], keys: [])
        #expect(stats.string == "0")
    }

    @Test("Renewing the lease keeps a long job with its worker")
    func renewal() async throws {
        let server = try RedisTestServer()
        let store = try Self.store(server.url, lease: .milliseconds(400))
        _ = try await Self.submit(store, "c")
        _ = try await store.take(consumer: "w1", count: 1, reclaim: true)
        for _ in 0..<5 {
            try await Task.sleep(for: .milliseconds(150))
            #expect(try await store.renew(consumer: "w1", held: [("c", 1)], running: 1, concurrency: 1) == [])
            #expect(try await store.take(consumer: "w2", count: 1, reclaim: true).isEmpty, "a renewed lease is never taken")
        }
    }

    @Test("A job that kills its worker every time fails after MAX_ATTEMPTS, naming them, into the dead letters")
    func poison() async throws {
        let server = try RedisTestServer()
        let store = try Self.store(server.url, lease: .milliseconds(200), maxAttempts: 2)
        _ = try await Self.submit(store, "p")
        for attempt in 1...2 {
            try await Task.sleep(for: .milliseconds(250))
            let taken = try await store.take(consumer: "w\(attempt)", count: 1, reclaim: true)
            #expect(taken.first?.attempt == attempt)
        }
        try await Task.sleep(for: .milliseconds(250))
        #expect(try await store.take(consumer: "w3", count: 1, reclaim: true).isEmpty)
        let failed = try #require(try await store.report("p"))
        #expect(failed.status == .failed)
        #expect(failed.error?.contains("started 2 time(s)") == true && failed.error?.contains("MAX_ATTEMPTS=2") == true)
        let dead = try await store.commands().send(["XRANGE", RedisArgument(store.keys.dead), "-", "+"], keys: [RedisArgument(store.keys.dead)])
        guard case .array(let entries) = dead, case .array(let entry)? = entries.first, entry.count == 2, case .array(let fields) = entry[1] else {
            Issue.record("no dead letter: \(dead)")
            return
        }
        #expect(fields.contains(.bulk(Array("p".utf8))) && fields.contains(.bulk(Array("2".utf8))))
        #expect(try await store.commands().send(["XLEN", RedisArgument(store.keys.dead)], keys: [RedisArgument(store.keys.dead)]).integer == 1)
        #expect(try await store.commands().send(["XLEN", RedisArgument(store.keys.queue)], keys: [RedisArgument(store.keys.queue)]).integer == 0)
    }

    @Test("Cancel: a queued job never runs; a running one is marked and its worker told; a final one stays")
    func cancel() async throws {
        let server = try RedisTestServer()
        let store = try Self.store(server.url)
        _ = try await Self.submit(store, "q1")
        #expect(try await store.stop("q1", as: .cancelled, error: nil) == .cancelled)
        #expect(try await store.take(consumer: "w", count: 5, reclaim: true).isEmpty)
        _ = try await Self.submit(store, "q2")
        _ = try await store.take(consumer: "w", count: 5, reclaim: true)
        let connector = try await store.redis.connector()
        let subscriber = connector.subscriber(channels: [store.keys.cancels])
        var events = subscriber.events.makeAsyncIterator()
        guard case .subscribed = await events.next() else { Issue.record("not subscribed"); return }
        #expect(try await store.stop("q2", as: .cancelled, error: nil) == .cancelled)
        guard case .message(let message) = await events.next() else { Issue.record("no cancel message"); return }
        #expect(String(decoding: message.payload, as: UTF8.self) == "q2")
        #expect(try await store.finish("q2", attempt: 1, status: .completed, result: Self.result("x")) == .stale("CANCELLED 1"))
        #expect(try await store.stop("q2", as: .cancelled, error: nil) == .cancelled)
        #expect(try await store.stop("nothing", as: .cancelled, error: nil) == nil)
        subscriber.close()
        let health = try await store.health()
        #expect(health["jobs"]?["inQueue"] == 0)
    }

    @Test("Retry, purge, Idempotency-Key and the queue's byte budget")
    func control() async throws {
        let server = try RedisTestServer()
        let store = try Self.store(server.url)
        _ = try await Self.submit(store, "r")
        _ = try await store.take(consumer: "w", count: 1, reclaim: true)
        #expect(try await store.finish("r", attempt: 1, status: .failed, result: JSONValue.object(["error": "no"]).serialized()).isRecorded)
        if case .refused = try await store.retry("r", ttl: .seconds(60)) { Issue.record("a FAILED job is retried") }
        #expect(try await store.report("r")?.status == .inQueue)
        #expect(try await store.take(consumer: "w", count: 1, reclaim: true).first?.attempt == 2, "a retried job's attempts go on growing")

        for id in ["u1", "u2", "u3"] { _ = try await Self.submit(store, id) }
        #expect(try await store.purgeQueue() == 3)
        #expect(try await store.report("u2") == nil)
        #expect(try await store.take(consumer: "w", count: 5, reclaim: true).isEmpty)

        #expect(try await Self.submit(store, "i1", key: "k") == .queued)
        #expect(try await Self.submit(store, "i2", key: "k") == .known("i1"))
        #expect(try await store.report("i2") == nil)

        let big: JSONValue = ["text": .string(String(repeating: "x", count: 1000))]
        #expect(try await Self.submit(store, "f1", input: big, limit: 1500) == .queued)
        guard case .full = try await Self.submit(store, "f2", input: big, limit: 1500) else {
            Issue.record("past the byte budget a job is refused")
            return
        }
    }

    @Test("Damaged records and keys of the wrong type are errors naming the key; other jobs go on")
    func damaged() async throws {
        let server = try RedisTestServer()
        let store = try Self.store(server.url)
        let commands = try await store.commands()
        _ = try await commands.send(["HSET", RedisArgument(store.keys.job("bad")), "status", "WHATEVER"], keys: [])
        await #expect { try await store.report("bad") } throws: { "\($0)".contains("fleet:{t}:job:bad") }
        _ = try await commands.send(["SET", RedisArgument(store.keys.stats), "x"], keys: [])
        await #expect { try await Self.submit(store, "s") } throws: { "\($0)".contains("WRONGTYPE") && "\($0)".contains(store.keys.stats) }
        _ = try await commands.send(["DEL", RedisArgument(store.keys.stats)], keys: [])
        #expect(try await Self.submit(store, "s2") == .queued)
    }

    @Test("Two endpoints on a 3-master Redis Cluster, in different slots: each runs its own jobs")
    func cluster() async throws {
        guard RedisClusterTestServer.isInstalled else { return }
        let cluster = try RedisClusterTestServer()
        // Endpoints whose hash tags fall on different masters.
        let names = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta"]
        var byMaster: [Int: String] = [:]
        for name in names {
            let master = try cluster.master(ofSlot: RedisClusterClient.slot(of: FleetKeys(endpoint: name).queue))
            if byMaster[master] == nil { byMaster[master] = name }
        }
        let endpoints = Array(byMaster.values.prefix(2))
        #expect(endpoints.count == 2)
        for endpoint in endpoints {
            let store = try Self.store(cluster.url, endpoint: endpoint)
            #expect(try await store.commands() is RedisClusterClient)
            #expect(try await Self.submit(store, "\(endpoint)-1") == .queued)
            // The blocked read goes to the endpoint's own master.
            let connection = try await store.redis.connector().blockingConnection()
            let entries = try await connection.xreadgroup(store.keys.queue, group: FleetKeys.group, consumer: "w", count: 4, block: .seconds(1))
            #expect(entries.count == 1)
            let started = try await store.take(consumer: "w", count: 4, reclaim: false, entries: entries)
            #expect(started.map(\.id) == ["\(endpoint)-1"])
            #expect(try await store.finish("\(endpoint)-1", attempt: 1, status: .completed, result: Self.result(.string(endpoint))).isRecorded)
            #expect(try await store.report("\(endpoint)-1")?.output == .string(endpoint))
            connection.close()
            await store.redis.shutdown()
        }
    }
}

extension FleetStore.Submitted: Equatable {
    public static func == (a: Self, b: Self) -> Bool {
        switch (a, b) {
        case (.queued, .queued): return true
        case (.known(let x), .known(let y)): return x == y
        case (.full(let x), .full(let y)): return x == y
        default: return false
        }
    }
}

extension FleetStore.Finished {
    var isRecorded: Bool {
        if case .recorded = self { return true }
        return false
    }
}

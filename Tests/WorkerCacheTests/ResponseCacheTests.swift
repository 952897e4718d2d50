import CoreMetrics
import Logging
import RedisClient
import Synchronization
import Testing
import TestSupport
import WorkerJSON
import WorkerRuntime
import WorkerRuntimeTesting

@testable import WorkerCache

/// Counts its runs and answers `{"echo": input}`, after `delay`; `fail` in the input throws,
/// `error` returns an error result, `empty` an answer the policy calls negative.
private final class CountingHandler: RawJobHandler {
    let runs = Atomic<Int>(0)
    let delay: Duration

    init(delay: Duration = .zero) { self.delay = delay }

    func handle(_ job: Job, output: JobOutputWriter, context: JobContext) async throws {
        runs.add(1, ordering: .relaxed)
        if delay > .zero { try await Task.sleep(for: delay) }
        if job.input["fail"] != nil { throw TestFailure() }
        if job.input["error"] != nil { return try output.respond(["error": "upstream said no"]) }
        if job.input["stream"] != nil {
            output.beginStream()
            return
        }
        if job.input["empty"] != nil { return try output.respond(["items": []]) }
        try output.respond(["echo": job.input, "run": .integer(Int64(runs.load(ordering: .relaxed)))])
    }

    struct TestFailure: Error {}
}

/// A backend that fails every call, as Redis does during an outage.
private struct BrokenBackend: ResponseCacheBackend {
    var name: String { "broken" }
    func get(_ key: String) async throws -> (value: [UInt8], timeToLive: Duration?)? { throw CacheUnavailable(message: "down") }
    func set(_ key: String, _ value: [UInt8], ttl: Duration) async throws { throw CacheUnavailable(message: "down") }
}

/// A shared backend in memory that counts its calls (another worker's answers can be put in).
private final class CountingBackend: ResponseCacheBackend {
    let entries = Mutex<[String: [UInt8]]>([:])
    let gets = Atomic<Int>(0)
    var name: String { "counting" }
    func get(_ key: String) async throws -> (value: [UInt8], timeToLive: Duration?)? {
        gets.add(1, ordering: .relaxed)
        return entries.withLock { $0[key] }.map { ($0, .seconds(60)) }
    }
    func set(_ key: String, _ value: [UInt8], ttl: Duration) async throws { entries.withLock { $0[key] = value } }
}

@Suite("The response cache", .defaultPass)
struct ResponseCacheTests {
    private func caching(
        _ inner: CountingHandler, backend: (any ResponseCacheBackend)? = nil, near: NearCache = NearCache(maxBytes: 1 << 20),
        configuration: ResponseCacheConfiguration = ResponseCacheConfiguration(),
        policy: ResponseCachePolicy = ResponseCachePolicy(isNegative: { $0["items"] == [] })
    ) -> CachingHandler {
        let cache = ResponseCache(near: near, backend: backend, configuration: configuration, handlerName: "test", policy: policy)
        let counter = { (name: String) in Counter(label: "test_\(name)") }
        return CachingHandler(inner: inner, cache: cache, hits: counter("hits"), misses: counter("misses"), shared: counter("shared"), failures: counter("failures"))
    }

    /// Runs one job; the answer, or nil when it failed or streamed.
    private func run(_ handler: CachingHandler, _ input: JSONValue) async -> JSONValue? {
        let output = JobOutputWriter(aggregateChunks: false, deliver: { _ in })
        do {
            try await handler.handle(Job(id: "j", input: input), output: output, context: .testing(job: Job(id: "j", input: input)))
        } catch {
            return nil
        }
        if case .value(let value) = output.outcome { return value }
        return nil
    }

    @Test("Keys: the canonical input, so key order and number spelling do not matter; handlers do not share")
    func keys() throws {
        let a = try CacheKey.make(handler: "h", input: try JSONValue.parse(#"{"a":1,"b":[2.0,{"y":1,"x":0}]}"#))
        let b = try CacheKey.make(handler: "h", input: try JSONValue.parse(#"{"b":[2,{"x":0e0,"y":1}],"a":1.0}"#))
        #expect(a == b)
        #expect(a.hasPrefix("worker-cache:h:") && a.utf8.count == "worker-cache:h:".utf8.count + 64)
        #expect(try CacheKey.make(handler: "other", input: ["a": 1]) != CacheKey.make(handler: "h", input: ["a": 1]))
        #expect(try CacheKey.make(handler: "h", input: ["a": 1]) != CacheKey.make(handler: "h", input: ["a": "1"]))
    }

    @Test("A hit answers without running the job; different inputs miss")
    func hits() async {
        let inner = CountingHandler()
        let handler = caching(inner)
        let first = await run(handler, ["q": "x", "n": 1])
        let again = await run(handler, ["n": 1.0, "q": "x"])
        #expect(first == again && first?["run"] == 1)
        #expect(inner.runs.load(ordering: .relaxed) == 1)
        _ = await run(handler, ["q": "y"])
        #expect(inner.runs.load(ordering: .relaxed) == 2)
    }

    @Test("Errors, error results and streams are never cached; not-cacheable jobs always run")
    func neverCached() async {
        let inner = CountingHandler()
        let handler = caching(inner, policy: ResponseCachePolicy(isCacheable: { $0["write"] == nil }))
        for input: JSONValue in [["fail": true], ["error": true], ["stream": true], ["write": 1]] {
            _ = await run(handler, input)
            _ = await run(handler, input)
        }
        #expect(inner.runs.load(ordering: .relaxed) == 8)
    }

    @Test("Entries expire after the TTL; negative answers after the shorter negative TTL; TTL 0 turns the cache off")
    func expiry() async throws {
        let clock = ManualClock()
        let inner = CountingHandler()
        let handler = caching(
            inner, near: NearCache(maxBytes: 1 << 20, now: { clock.now }),
            configuration: ResponseCacheConfiguration(ttl: .seconds(300), negativeTTL: .seconds(30)))
        _ = await run(handler, ["q": 1])
        _ = await run(handler, ["empty": true])
        _ = await run(handler, ["q": 1])
        _ = await run(handler, ["empty": true])
        #expect(inner.runs.load(ordering: .relaxed) == 2)
        clock.advance(.seconds(31))
        _ = await run(handler, ["q": 1])
        _ = await run(handler, ["empty": true])
        #expect(inner.runs.load(ordering: .relaxed) == 3)
        clock.advance(.seconds(270))
        _ = await run(handler, ["q": 1])
        #expect(inner.runs.load(ordering: .relaxed) == 4)

        let off = CountingHandler()
        let disabled = caching(off, configuration: ResponseCacheConfiguration(ttl: .zero))
        _ = await run(disabled, ["q": 1])
        _ = await run(disabled, ["q": 1])
        #expect(off.runs.load(ordering: .relaxed) == 2)
    }

    @Test("64 concurrent identical misses make one run; all 64 get its answer")
    func singleFlight() async {
        let inner = CountingHandler(delay: .milliseconds(100))
        let handler = caching(inner)
        let answers = await withTaskGroup(of: JSONValue?.self) { group in
            for _ in 0..<64 { group.addTask { await run(handler, ["same": "question"]) } }
            return await group.reduce(into: [JSONValue?]()) { $0.append($1) }
        }
        #expect(inner.runs.load(ordering: .relaxed) == 1)
        #expect(answers.count == 64 && answers.allSatisfy { $0 != nil && $0 == answers[0] })
        #expect(handler.cache.flights.inFlight == 0)
    }

    @Test("A failing leader hands nothing on: each follower runs the job itself and reports its own outcome")
    func failingLeader() async {
        let inner = CountingHandler(delay: .milliseconds(100))
        let handler = caching(inner)
        let answers = await withTaskGroup(of: JSONValue?.self) { group in
            for _ in 0..<4 { group.addTask { await run(handler, ["fail": true]) } }
            return await group.reduce(into: [JSONValue?]()) { $0.append($1) }
        }
        #expect(answers.allSatisfy { $0 == nil })
        #expect(inner.runs.load(ordering: .relaxed) == 4)
    }

    @Test("A cancelled follower stops waiting; the leader's flight goes on")
    func cancelledFollower() async throws {
        let flights = SingleFlight()
        guard case .leader = await flights.join("k") else { Issue.record("first joins lead"); return }
        let follower = Task { await flights.join("k") }
        try await Task.sleep(for: .milliseconds(50))
        follower.cancel()
        guard case .follower(nil) = await follower.value else { Issue.record("a cancelled follower gets nothing"); return }
        flights.finish("k", answer: ["done": true])
        #expect(flights.inFlight == 0)
    }

    @Test("A broken shared backend is logged and the job runs; its answer is still kept in the process")
    func brokenBackend() async {
        let inner = CountingHandler()
        let handler = caching(inner, backend: BrokenBackend())
        #expect(await run(handler, ["q": 1]) != nil)
        #expect(await run(handler, ["q": 1]) != nil)
        #expect(inner.runs.load(ordering: .relaxed) == 1)
    }

    @Test("With a shared backend: another worker's answer is a hit, then served from the process without asking again")
    func sharedBackend() async throws {
        let inner = CountingHandler()
        let backend = CountingBackend()
        let key = try CacheKey.make(handler: "test", input: ["q": "shared"])
        backend.entries.withLock { $0[key] = Array(#"{"from":"another worker"}"#.utf8) }
        let handler = caching(inner, backend: backend)
        #expect(await run(handler, ["q": "shared"]) == ["from": "another worker"])
        #expect(await run(handler, ["q": "shared"]) == ["from": "another worker"])
        #expect(inner.runs.load(ordering: .relaxed) == 0)
        #expect(backend.gets.load(ordering: .relaxed) == 1)
        _ = await run(handler, ["q": "new"])
        let stored = try CacheKey.make(handler: "test", input: ["q": "new"])
        #expect(backend.entries.withLock { $0[stored] } != nil)
    }

    @Test("The in-process table stays within its byte budget, dropping the least recently used")
    func lruBounds() {
        var table = LRUTable<[UInt8]>(capacity: 1000)
        let now = ContinuousClock.now
        for index in 0..<100 { table.set("key\(index)", [UInt8](repeating: 1, count: 95), size: 95, expires: now + .seconds(60)) }
        #expect(table.bytes <= 1000)
        #expect(table.count == 10)
        #expect(table.get("key0", now: now) == nil)
        #expect(table.get("key99", now: now) != nil)
        // key90 is used, so key91 is the oldest now.
        _ = table.get("key90", now: now)
        table.set("new", [UInt8](repeating: 2, count: 95), size: 95, expires: now + .seconds(60))
        #expect(table.get("key90", now: now) != nil && table.get("key91", now: now) == nil)
        table.set("huge", [UInt8](repeating: 3, count: 5000), size: 5000, expires: now + .seconds(60))
        #expect(table.get("huge", now: now) == nil && table.bytes <= 1000)
        #expect(table.get("new", now: now + .seconds(61)) == nil)
    }

    @Test("Settings: CACHE_TTL overrides the handler's default; bad values name the variable")
    func configuration() throws {
        #expect(try ResponseCacheConfiguration.fromEnvironment([:], defaultTTL: .seconds(3600)).ttl == .seconds(3600))
        let set = try ResponseCacheConfiguration.fromEnvironment(["CACHE_TTL": "2.5", "CACHE_MAX_BYTES": "4096", "CACHE_NEGATIVE_TTL": "0"])
        #expect(set.ttl == .milliseconds(2500) && set.maxBytes == 4096 && set.negativeTTL == .zero)
        #expect(!(try ResponseCacheConfiguration.fromEnvironment(["CACHE_TTL": "0"])).isEnabled)
        for (name, value) in [("CACHE_TTL", "-1"), ("CACHE_TTL", "soon"), ("CACHE_MAX_BYTES", "12")] {
            do {
                _ = try ResponseCacheConfiguration.fromEnvironment([name: value])
                Issue.record("\(name)=\(value) must be refused")
            } catch {
                #expect("\(error)".contains(name))
            }
        }
    }
}

@Suite(
    "The response cache and rate limits on Redis", .tags(.servers), .pass(.servers),
    .enabled(if: RedisTestServer.isInstalled, "redis-server is installed by scripts/test.sh"))
struct RedisCacheTests {
    @Test("Answers are shared through Redis with their TTL; a Redis outage skips the cache, then it is used again")
    func redisBackend() async throws {
        let server = try RedisTestServer()
        let redis = try RedisClient(configuration: RedisConfiguration(url: server.url))
        defer { Task { await redis.shutdown() } }
        let backend = RedisCacheBackend(redis: redis, pause: .milliseconds(300))
        try await backend.set("worker-cache:t:1", Array("{\"a\":1}".utf8), ttl: .seconds(30))
        let entry = try #require(try await backend.get("worker-cache:t:1"))
        #expect(entry.value == Array("{\"a\":1}".utf8))
        #expect(entry.timeToLive.map { $0 > .seconds(25) && $0 <= .seconds(30) } == true)
        let ttl = try await redis.ttl("worker-cache:t:1")
        #expect((25...30).contains(ttl))
        server.stop()
        await #expect(throws: (any Error).self) { try await backend.get("worker-cache:t:1") }
        // Skipped at once while paused: no connect attempt, no wait.
        let started = ContinuousClock.now
        await #expect(throws: CacheUnavailable.self) { try await backend.get("worker-cache:t:1") }
        #expect(ContinuousClock.now - started < .milliseconds(100))
        try server.start()
        try await Task.sleep(for: .milliseconds(350))
        // The first call after the pause is still skipped: it starts one probe, off its path.
        await #expect(throws: CacheUnavailable.self) { try await backend.get("worker-cache:t:1") }
        try await waitUntil(timeout: .seconds(5)) { !backend.isSkippingRedis }
        #expect(try await backend.get("worker-cache:t:1") == nil)
    }

    @Test("Rate-limit windows: counted atomically in Redis and shared by two clients; in-process on its own")
    func rateLimitStores() async throws {
        let server = try RedisTestServer()
        let one = try RedisClient(configuration: RedisConfiguration(url: server.url))
        let two = try RedisClient(configuration: RedisConfiguration(url: server.url))
        defer { Task { await one.shutdown(); await two.shutdown() } }
        let storeA = RedisRateLimitStore(redis: one)
        let storeB = RedisRateLimitStore(redis: two)
        // The window opens at the first hit, after this: however slow a loaded machine makes the
        // hits, what is left of it is at least the window less the time taken.
        let started = ContinuousClock.now
        let counts = try await withThrowingTaskGroup(of: Int.self) { group in
            for index in 0..<50 {
                group.addTask { try await (index.isMultiple(of: 2) ? storeA : storeB).hit("run:ip:1.2.3.4", window: .seconds(10)).count }
            }
            return try await group.reduce(into: [Int]()) { $0.append($1) }
        }
        #expect(counts.sorted() == Array(1...50))
        let next = try await storeB.hit("run:ip:1.2.3.4", window: .seconds(10))
        let elapsed = ContinuousClock.now - started
        #expect(next.count == 51 && next.resetIn <= .seconds(10) && next.resetIn >= .seconds(10) - elapsed - .milliseconds(20))
        let short = try await storeA.hit("run:ip:5.6.7.8", window: .milliseconds(200))
        #expect(short.count == 1)
        try await Task.sleep(for: .milliseconds(300))
        #expect(try await storeA.hit("run:ip:5.6.7.8", window: .milliseconds(200)).count == 1)

        // Redis down: counted here at once; back: counted in Redis again after one probe.
        let paused = RedisRateLimitStore(redis: one, pause: .milliseconds(200))
        server.stop()
        #expect(try await paused.hit("run:ip:9.9.9.9", window: .seconds(10)).count == 1)
        #expect(paused.isSkippingRedis)
        #expect(try await paused.hit("run:ip:9.9.9.9", window: .seconds(10)).count == 2)
        try server.start()
        try await Task.sleep(for: .milliseconds(250))
        _ = try await paused.hit("run:ip:9.9.9.9", window: .seconds(10))
        try await waitUntil(timeout: .seconds(5)) { !paused.isSkippingRedis }
        #expect(try await paused.hit("run:ip:9.9.9.9", window: .seconds(10)).count == 1)

        var counter = FixedWindowCounter(maxKeys: 3)
        let now = ContinuousClock.now
        #expect(counter.hit("a", window: .seconds(1), now: now).count == 1)
        #expect(counter.hit("a", window: .seconds(1), now: now + .milliseconds(500)).count == 2)
        #expect(counter.hit("a", window: .seconds(1), now: now + .milliseconds(1001)).count == 1)
        for key in ["b", "c", "d", "e"] { _ = counter.hit(key, window: .seconds(1), now: now + .milliseconds(1001)) }
        #expect(counter.keys <= 3)
    }
}

/// A clock the test moves.
private final class ManualClock: Sendable {
    private let offset = Mutex<Duration>(.zero)
    private let start = ContinuousClock.now

    var now: ContinuousClock.Instant { start + offset.withLock { $0 } }
    func advance(_ by: Duration) { offset.withLock { $0 += by } }
}

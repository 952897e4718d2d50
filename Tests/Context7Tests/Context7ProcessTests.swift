import CurlHTTP
import FakeContext7
import RedisClient
import Testing
import TestSupport
import WorkerJSON
import WorkerRuntimeTesting

/// `context7 --local` as a process, against the fake Context7 API and a real redis-server.
@Suite(
    "context7 worker processes with Redis", .tags(.process, .servers), .pass(.servers),
    .enabled(if: RedisTestServer.isInstalled, "redis-server is installed by scripts/test.sh"))
struct Context7ProcessTests {
    private func environment(_ base: String, redis: RedisTestServer?, _ extra: [String: String] = [:]) -> [String: String] {
        var environment = ["CONTEXT7_BASE_URL": base, "CONTEXT7_RETRIES": "1"]
        if let redis { environment["REDIS_URL"] = redis.url }
        return environment.merging(extra) { _, new in new }
    }

    private func docs(_ query: String) -> JSONValue {
        ["action": "get_docs", "library_id": "/acme/widgets", "query": .string(query)]
    }

    @Test("Cache hits survive a worker restart; with Redis stopped jobs still answer; then it is used again")
    func cacheAcrossRestartAndOutage() async throws {
        let redis = try RedisTestServer()
        let fake = FakeContext7()
        try await fake.run { base in
            let env = environment(base, redis: redis)
            let first = try await LocalWorker.start("context7", environment: env)
            #expect(try await first.runSync(docs("install"))["status"] == "COMPLETED")
            #expect(try await first.runSync(docs("install"))["output"]?["found"] == true)
            #expect(fake.callCount == 1)
            first.stop()
            _ = try await first.process.wait()

            let second = try await LocalWorker.start("context7", environment: env)
            defer { second.stop() }
            #expect(try await second.runSync(docs("install"))["status"] == "COMPLETED")
            #expect(fake.callCount == 1, "answered from Redis after the restart")

            redis.stop()
            for query in ["configure", "configure", "upgrade"] {
                let answer = try await second.runSync(docs(query))
                #expect(answer["status"] == "COMPLETED", "\(answer)")
            }
            // Answered despite the outage; a repeat is served from the worker's own copy.
            #expect(fake.callCount == 3)
            #expect(second.process.stderr.contains("Response cache"))

            try redis.start()
            // The shared cache is skipped for a few seconds after a failure, then used again:
            // new answers reach Redis (it restarted empty).
            let probe = try RedisClient(configuration: RedisConfiguration(url: redis.url))
            defer { Task { await probe.shutdown() } }
            var stored = 0
            for attempt in 0..<40 where stored == 0 {
                _ = try await second.runSync(docs("deploy \(attempt)"))
                stored = Int(try await probe.send(["DBSIZE"]).integer ?? 0)
                if stored == 0 { try await Task.sleep(for: .milliseconds(500)) }
            }
            #expect(stored > 0, "answers are stored in Redis again once it is back")
        }
    }

    @Test("Entries expire after CACHE_TTL")
    func expiry() async throws {
        let redis = try RedisTestServer()
        let fake = FakeContext7()
        try await fake.run { base in
            // Long enough that the repeat lands inside it even while the servers pass loads the machine.
            let worker = try await LocalWorker.start("context7", environment: environment(base, redis: redis, ["CACHE_TTL": "3"]))
            defer { worker.stop() }
            _ = try await worker.runSync(docs("a"))
            _ = try await worker.runSync(docs("a"))
            #expect(fake.callCount == 1)
            try await Task.sleep(for: .milliseconds(3300))
            _ = try await worker.runSync(docs("a"))
            #expect(fake.callCount == 2)
        }
    }

    @Test("64 concurrent identical uncached requests make exactly one upstream call")
    func singleFlight() async throws {
        let fake = FakeContext7(latency: .milliseconds(50))
        try await fake.run { base in
            let worker = try await LocalWorker.start("context7", environment: environment(base, redis: nil, ["WORKER_CONCURRENCY": "64"]))
            defer { worker.stop() }
            let answers = try await withThrowingTaskGroup(of: JSONValue.self) { group in
                for _ in 0..<64 { group.addTask { try await worker.runSync(docs("same question")) } }
                return try await group.reduce(into: [JSONValue]()) { $0.append($1) }
            }
            #expect(answers.allSatisfy { $0["status"] == "COMPLETED" && $0["output"]?["found"] == true })
            #expect(fake.callCount == 1)
        }
    }

    @Test("Rate limits: two workers on one Redis share a client's budget; 429 with Retry-After and RateLimit headers")
    func sharedRateLimits() async throws {
        let redis = try RedisTestServer()
        let fake = FakeContext7()
        try await fake.run { base in
            let env = environment(base, redis: redis, ["RATE_LIMIT_RUNSYNC": "4/30s"])
            let a = try await LocalWorker.start("context7", environment: env)
            let b = try await LocalWorker.start("context7", environment: env)
            defer { a.stop(); b.stop() }
            var remaining: [String] = []
            for worker in [a, b, a, b] {
                let response = try await worker.client.execute(try .json(url: "\(worker.base)/runsync", body: ["input": docs("x")]))
                #expect(response.status == 200)
                #expect(response.header("RateLimit-Limit") == "4")
                remaining.append(response.header("RateLimit-Remaining") ?? "")
            }
            #expect(remaining == ["3", "2", "1", "0"])
            let refused = try await b.client.execute(try .json(url: "\(a.base)/runsync", body: ["input": docs("x")]))
            #expect(refused.status == 429)
            let retryAfter = Int(refused.header("Retry-After") ?? "") ?? 0
            #expect((1...30).contains(retryAfter))
            #expect(refused.header("RateLimit-Remaining") == "0" && refused.header("RateLimit-Reset") != nil)
            #expect(refused.text.contains("rate limit exceeded"))
            // Other routes have no budget here; the health check never has one.
            #expect(try await a.client.execute(HTTPClientRequest(url: "\(a.base)/ping")).status == 200)
            #expect(try await a.client.execute(HTTPClientRequest(url: "\(a.base)/health")).header("RateLimit-Limit") == nil)
        }
    }

    @Test("Without Redis each process counts on its own budget")
    func localRateLimits() async throws {
        let fake = FakeContext7()
        try await fake.run { base in
            let worker = try await LocalWorker.start("context7", environment: environment(base, redis: nil, ["RATE_LIMIT_DEFAULT": "2/10s"]))
            defer { worker.stop() }
            var statuses: [Int] = []
            for _ in 0..<3 {
                statuses.append(try await worker.client.execute(try .json(url: "\(worker.base)/run", body: ["input": docs("y")])).status)
            }
            #expect(statuses == [200, 200, 429])
        }
    }
}

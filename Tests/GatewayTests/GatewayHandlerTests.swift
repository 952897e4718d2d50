import CurlHTTP
import EndpointAPI
import GatewayCore
import Testing
import TestSupport
import WorkerJSON
import WorkerRuntime
import WorkerRuntimeTesting

@testable import Gateway

@Suite("The gateway handler", .defaultPass)
struct GatewayHandlerTests {
    static let http = CurlHTTPClient(name: "gateway-tests")
    /// Upstreams a, b (tier cpu) and g (tier gpu); jobs with `input.big` prefer gpu.
    static func configuration(breaker: Int = 5, budget: Double = 0.2) throws -> GatewayConfiguration {
        try GatewayConfiguration.parse(
            [
                "upstreams": [
                    ["name": "a", "url": "http://127.0.0.1:1/v2/a", "tier": "cpu"],
                    ["name": "b", "url": "http://127.0.0.1:1/v2/b", "tier": "cpu"],
                    ["name": "g", "url": "http://127.0.0.1:1/v2/g", "tier": "gpu"],
                ],
                "routes": [["when": [["path": "input.big", "equals": true]], "tiers": ["gpu", "cpu"]], ["tiers": ["cpu"]]],
                "breaker": ["consecutive_failures": .integer(Int64(breaker)), "cooldown_seconds": 60],
                "retry_budget": .number(budget),
            ], environment: [:])
    }

    func runtime(_ a: ScriptedUpstream, _ b: ScriptedUpstream, _ g: ScriptedUpstream, breaker: Int = 5) throws -> (WorkerRuntime, UpstreamPool) {
        let configuration = try Self.configuration(breaker: breaker)
        let pool = UpstreamPool(configuration: configuration)
        let handler = GatewayHandler(
            router: TierRouter(configuration: configuration), pool: pool, clients: [a, b, g],
            openAI: GatewayOpenAI(pool: pool, client: Self.http))
        return (WorkerRuntime(handler: handler, options: WorkerOptions(name: "gateway")), pool)
    }

    @Test("A job goes to its tier; the output is the upstream's; input.tier is not forwarded, the policy is, the webhook is not")
    func routes() async throws {
        let (a, b, g) = (ScriptedUpstream("a"), ScriptedUpstream("b"), ScriptedUpstream("g"))
        let (runtime, _) = try runtime(a, b, g)
        let plain = try await runtime.test(["x": 1])
        #expect(plain.output?["input"] == ["x": 1])
        #expect(a.calls + b.calls == 1 && g.calls == 0)
        let big = try await runtime.test(["big": true])
        #expect(big.output?["by"] == "g")
        let pinned = try await runtime.test(["tier": "gpu", "y": 2], job: ["policy": ["executionTimeout": 60000], "webhook": "https://hook.example"])
        #expect(pinned.output?["input"] == ["y": 2])
        let sent = try #require(g.sent.last)
        #expect(sent.input == ["y": 2] && sent.policy.executionTimeout == .seconds(60) && sent.webhook == nil)
        let unknown = try await runtime.test(["tier": "tpu"]).error ?? ""
        #expect(unknown.contains("tpu") && unknown.contains("is not a tier of this gateway"), "\(unknown)")
    }

    @Test("Each call names the gateways passed (X-Gateway-Chain, this one last); a job back at a gateway it passed, or through too many, is refused unsent")
    func chain() async throws {
        let (a, b, g) = (ScriptedUpstream("a"), ScriptedUpstream("b"), ScriptedUpstream("g"))
        let configuration = try Self.configuration()
        let pool = UpstreamPool(configuration: configuration)
        var handler = GatewayHandler(
            router: TierRouter(configuration: configuration), pool: pool, clients: [a, b, g], openAI: GatewayOpenAI(pool: pool, client: Self.http))
        handler.instance = "self1"
        let runtime = WorkerRuntime(handler: handler, options: WorkerOptions(name: "gateway"))
        _ = try await runtime.test(["x": 1])
        _ = try await runtime.test(["x": 2], job: ["gatewayChain": "front,edge"])
        // Each job went to a or b, whichever the choice drew: the headers in any order.
        let headers = (a.headers + b.headers).compactMap { $0["X-Gateway-Chain"] }.sorted()
        #expect(headers == ["front,edge,self1", "self1"])
        let looped = try await runtime.test(["x": 3], job: ["gatewayChain": "front,self1"]).error ?? ""
        #expect(looped.contains("came back to this gateway") && looped.contains("front → self1"), "\(looped)")
        let long = try await runtime.test(["x": 4], job: ["gatewayChain": .string((1...8).map { "g\($0)" }.joined(separator: ","))]).error ?? ""
        #expect(long.contains("passed 8 gateways"), "\(long)")
        let chat = try await runtime.test(["openai_route": "/v1/chat/completions", "openai_input": ["model": "m"]], job: ["gatewayChain": "self1"])
        let text = (try? chat.output?.jsonString()) ?? "\(chat)"
        #expect(text.contains("508") && text.contains("loop_detected"), "\(text)")
        #expect(a.calls + b.calls + g.calls == 2, "refused jobs were sent nowhere")
    }

    @Test("Fallback only when safe: refused, 503 and TIMED_OUT go elsewhere; FAILED, a 4xx and a lost answer do not")
    func fallback() async throws {
        do {
            let (a, b, g) = (ScriptedUpstream("a", .refused), ScriptedUpstream("b", .http(503)), ScriptedUpstream("g", .timedOut, .complete))
            let (runtime, _) = try runtime(a, b, g)
            // gpu times out, then cpu: both refuse it. Every upstream was tried once.
            let result = try await runtime.test(["big": true])
            #expect(result.error?.contains("no upstream took the job") == true, "\(result)")
            #expect(a.calls == 1 && b.calls == 1 && g.calls == 1)
            // Now gpu completes: the first call goes there.
            #expect(try await runtime.test(["big": true]).output?["by"] == "g")
        }
        for (behaviour, expected) in [
            (ScriptedUpstream.Behaviour.fail("bad input: x"), "bad input: x"), (.http(400), "refused the job"), (.lost, "may have run there"),
        ] {
            let (a, b, g) = (ScriptedUpstream("a", behaviour), ScriptedUpstream("b", behaviour), ScriptedUpstream("g"))
            let (runtime, _) = try runtime(a, b, g)
            let result = try await runtime.test(["x": 1])
            #expect(result.error?.contains(expected) == true, "\(behaviour): \(result)")
            #expect(a.calls + b.calls == 1, "\(behaviour): sent twice")
        }
    }

    @Test("/v2/{upstream}/… names one upstream: only it is called, whatever the rules, and nothing falls back")
    func pinned() async throws {
        let (a, b, g) = (ScriptedUpstream("a"), ScriptedUpstream("b"), ScriptedUpstream("g", .http(503)))
        let (runtime, _) = try runtime(a, b, g)
        #expect(try await runtime.test(["x": 1], job: ["endpointPath": "a"]).output?["by"] == "a")
        let refused = try await runtime.test(["x": 1], job: ["endpointPath": "g"])
        #expect(refused.error?.contains("g did not take the job") == true && a.calls + b.calls == 1, "\(refused)")
        // A name that is no upstream's (the gateway's own endpoint id): the rules decide.
        #expect(try await runtime.test(["x": 1], job: ["endpointPath": "my-gateway"]).output?["by"] != nil)
    }

    @Test("A job not final after /runsync is polled until it is")
    func polls() async throws {
        let (a, b, g) = (ScriptedUpstream("a", .completeAfterPolls(3)), ScriptedUpstream("b", .completeAfterPolls(3)), ScriptedUpstream("g"))
        let (runtime, _) = try runtime(a, b, g)
        #expect(try await runtime.test(["x": 1]).output?["polled"] == true)
    }

    @Test("The job's executionTimeout bounds the call, and the upstream's job is cancelled with it")
    func deadline() async throws {
        let (a, b, g) = (ScriptedUpstream("a", .completeAfterPolls(10_000)), ScriptedUpstream("b", .completeAfterPolls(10_000)), ScriptedUpstream("g"))
        let (runtime, _) = try runtime(a, b, g)
        let started = ContinuousClock.now
        let result = try await runtime.test(["x": 1], job: ["policy": ["executionTimeout": 600]])
        #expect(ContinuousClock.now - started < .seconds(5))
        #expect(result.error != nil, "\(result)")
        try await Task.sleep(for: .milliseconds(100))
        #expect(a.cancelled.count + b.cancelled.count == 1)
    }

    @Test("A breaker opens after failures in a row and its upstream is skipped; a good probe past the cooldown closes it")
    func breaker() async throws {
        let (a, b, g) = (ScriptedUpstream("a", .http(503)), ScriptedUpstream("b"), ScriptedUpstream("g"))
        let (runtime, pool) = try runtime(a, b, g, breaker: 2)
        for _ in 0..<30 { #expect(try await runtime.test(["x": 1]).output?["by"] == "b") }
        #expect(a.calls == 2, "a was called \(a.calls) times: its breaker should have opened after 2 failures")
        #expect(pool.breaker(0).openings == 1)
        pool.probed(0, UpstreamPool.Health(queued: 0, workers: 1), now: .now + .seconds(61))
        #expect(pool.breaker(0).state == .closed)
    }

    @Test("Fallbacks spend the retry budget: a failing tier cannot multiply the calls")
    func budget() async throws {
        let configuration = try Self.configuration(breaker: 1000, budget: 0)
        let pool = UpstreamPool(configuration: configuration)
        let (a, b, g) = (ScriptedUpstream("a", .http(503)), ScriptedUpstream("b", .http(503)), ScriptedUpstream("g"))
        let runtime = WorkerRuntime(
            handler: GatewayHandler(
            router: TierRouter(configuration: configuration), pool: pool, clients: [a, b, g],
            openAI: GatewayOpenAI(pool: pool, client: Self.http)), options: WorkerOptions())
        var spent = 0
        let started = ContinuousClock.now
        for _ in 0..<20 where try await runtime.test(["x": 1]).error?.contains("retry budget is spent") == true { spent += 1 }
        // The reserve (10 fallbacks) goes first, and 1 more per second; then each job makes one
        // call, not two. (A loaded machine takes longer, and so refills more.)
        let refilled = Int((ContinuousClock.now - started).components.seconds) + 1
        #expect(spent >= 10 - refilled)
        #expect(a.calls + b.calls <= 20 + 10 + refilled)
    }

    @Test("Health answers in RunPod's shape are read; anything else is a failed probe")
    func health() {
        #expect(
            UpstreamPool.health(from: ["jobs": ["inQueue": 4, "inProgress": 1], "workers": ["idle": 1, "running": 2, "throttled": 5]])
                == UpstreamPool.Health(queued: 4, workers: 3))
        #expect(UpstreamPool.health(from: ["jobs": ["inQueue": -3]]) == UpstreamPool.Health(queued: 0, workers: nil))
        #expect(UpstreamPool.health(from: ["status": "ok"]) == nil)
        // A lying upstream's counts are clamped, never overflowing what uses them.
        #expect(
            UpstreamPool.health(from: ["jobs": ["inQueue": .integer(.max)], "workers": ["idle": .integer(.max), "running": 1]])
                == UpstreamPool.Health(queued: 1_000_000, workers: 1_000_001))
        #expect(UpstreamPool.health(from: "garbage") == nil)
    }
}

@Suite("The gateway handler: streamed jobs", .defaultPass)
struct GatewayStreamTests {
    static let http = CurlHTTPClient(name: "gateway-stream-tests")

    func runtime(_ a: ScriptedUpstream, _ b: ScriptedUpstream) throws -> WorkerRuntime {
        let configuration = try GatewayConfiguration.parse(
            ["upstreams": [
                ["name": "a", "url": "http://127.0.0.1:1/v2/a", "streams": true],
                ["name": "b", "url": "http://127.0.0.1:1/v2/b", "streams": true],
            ]], environment: [:])
        let pool = UpstreamPool(configuration: configuration)
        let handler = GatewayHandler(
            router: TierRouter(configuration: configuration), pool: pool, clients: [a, b], openAI: GatewayOpenAI(pool: pool, client: Self.http))
        return WorkerRuntime(handler: handler, options: WorkerOptions(returnAggregateStream: true, name: "gateway"))
    }

    @Test("Chunks pass through as they come; a failure after the first chunk is not sent elsewhere")
    func chunks() async throws {
        let batches: [[JSONValue]] = [["one"], ["two", "three"]]
        let (a, b) = (ScriptedUpstream("a", .chunks(batches, failing: false)), ScriptedUpstream("b", .chunks(batches, failing: false)))
        let result = try await runtime(a, b).test(["x": 1])
        #expect(result.output == ["one", "two", "three"], "\(result)")
        let (c, d) = (ScriptedUpstream("c", .chunks([["partial"]], failing: true)), ScriptedUpstream("d", .chunks([["partial"]], failing: true)))
        let failed = try await runtime(c, d).test(["x": 1])
        #expect(failed.error != nil && c.calls + d.calls == 1, "\(failed)")
        // Never accepted: the other upstream streams it.
        let (e, f) = (ScriptedUpstream("e", .http(503)), ScriptedUpstream("f", .http(503)))
        let refused = try await runtime(e, f).test(["x": 1])
        #expect(refused.error?.contains("no upstream took the job") == true && e.calls + f.calls == 2)
    }
}

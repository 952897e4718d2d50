import Foundation
import TestSupport
import Testing
import WorkerJSON
@testable import GatewayCore

@Suite("Gateway configuration", .defaultPass)
struct GatewayConfigurationTests {
    static let good: JSONValue = [
        "upstreams": [
            ["name": "light", "url": "http://127.0.0.1:8001/v2/echo/", "tier": "light"],
            ["name": "cpu-a", "url": "https://api.runpod.ai/v2/abc", "tier": "cpu", "weight": 2, "api_key_env": "UPSTREAM_KEY", "max_in_flight": 8],
            ["name": "gpu", "url": "https://api.runpod.ai/v2/def", "openai_url": "https://api.runpod.ai/v2/def/openai/v1",
             "models": ["llama"], "mcp_url": "https://x.example/mcp", "tier": "gpu", "timeout_seconds": 30],
        ],
        "routes": [
            ["tools": ["memory_retrieve"], "tiers": ["light"]],
            ["when": [["path": "input.task", "equals": "embed"], ["path": "$.input.n", "max": 100]], "tiers": ["cpu", "gpu"]],
            ["min_input_bytes": 100_000, "tiers": ["gpu"]],
            ["tiers": ["light", "cpu", "gpu"]],
        ],
        "breaker": ["consecutive_failures": 3, "cooldown_seconds": 2],
        "retry_budget": 0.1,
    ]

    @Test("A good file reads into upstreams, rules and settings, with the documented defaults")
    func good() throws {
        let configuration = try GatewayConfiguration.parse(Self.good, environment: ["UPSTREAM_KEY": "k"])
        #expect(configuration.upstreams.map(\.name) == ["light", "cpu-a", "gpu"])
        #expect(configuration.upstreams[0].url == "http://127.0.0.1:8001/v2/echo")
        #expect(configuration.upstreams[0].weight == 1 && configuration.upstreams[0].maxInFlight == 256 && configuration.upstreams[0].timeout == .seconds(600))
        #expect(configuration.upstreams[1].apiKey == "k" && configuration.upstreams[1].maxInFlight == 8)
        #expect(configuration.upstreams[2].timeout == .seconds(30) && configuration.upstreams[2].models == ["llama"])
        #expect(configuration.tiers == ["light", "cpu", "gpu"])
        #expect(configuration.routes.count == 4 && configuration.routes[3].isDefault)
        #expect(configuration.breaker.consecutiveFailures == 3 && configuration.breaker.cooldown == .seconds(2) && configuration.breaker.errorRate == 0.5)
        #expect(configuration.retryBudget == 0.1 && configuration.probeInterval == .seconds(5))
    }

    @Test("Without routes, every tier in the order the upstreams name them")
    func defaultRoute() throws {
        let configuration = try GatewayConfiguration.parse(
            ["upstreams": [["name": "a", "url": "http://h/v2/a", "tier": "x"], ["name": "b", "url": "http://h/v2/b", "tier": "y"], ["name": "c", "url": "http://h/v2/c", "tier": "x"]]],
            environment: [:])
        #expect(configuration.routes == [RouteRule(tiers: ["x", "y"])])
    }

    @Test("Every problem is reported at once, each naming its field")
    func problems() {
        let bad: JSONValue = [
            "upstreams": [
                ["name": "ok", "url": "http://h/v2/ok"],
                ["name": "ok", "url": "ftp://h"],
                ["name": "bad name!", "weight": -1, "api_key_env": "MISSING_KEY", "wieght": 2],
                ["name": "llm", "openai_url": "http://h/openai/v1"],
            ],
            "routes": [
                ["tiers": ["default"]],
                ["when": [["path": "input..x", "equals": 1], ["path": "input.y"]], "tiers": ["nope"]],
            ],
            "retry_budget": 2,
            "extra": true,
        ]
        do {
            _ = try GatewayConfiguration.parse(bad, environment: [:])
            Issue.record("a bad file was accepted")
        } catch {
            let text = error.problems.joined(separator: "\n")
            for expected in [
                "upstreams[1].url: must be an http:// or https:// URL", "upstreams[2].name: must be 1 to 64",
                "upstreams[2].weight: must be a number > 0 and at most 1000000, got -1", "upstreams[2].api_key_env: the variable MISSING_KEY is not set",
                "upstreams[2].wieght: unknown field", "upstreams[2]: needs at least one of url", "upstreams[3].models: must list the models",
                "routes[0]: has no predicate, so the rules after it would never apply", "routes[1].tiers[0]: \"nope\" is no tier of an upstream with a url",
                "routes[1].when[0].path: must be a path", "routes[1].when[1]: needs exactly one test", "retry_budget: must be a share",
                "extra: unknown field",
            ] {
                #expect(text.contains(expected), "missing: \(expected)\n\(text)")
            }
            #expect(error.description.hasPrefix("GATEWAY_CONFIG is not valid"))
        }
        #expect(throws: GatewayConfigurationError.self) {
            try GatewayConfiguration.parse(["upstreams": [["name": "a", "url": "http://h/v2/a"]], "routes": [["tools": ["t"], "tiers": ["default"]]]], environment: [:])
        }
        #expect(throws: GatewayConfigurationError.self) {
            try GatewayConfiguration.parse(["upstreams": [["name": "a", "url": "http://h"], ["name": "a", "url": "http://h"]]], environment: [:])
        }
        #expect(throws: GatewayConfigurationError.self) { try GatewayConfiguration.parse(["upstreams": []], environment: [:]) }
        #expect(throws: GatewayConfigurationError.self) { try GatewayConfiguration.parse([1, 2], environment: [:]) }
    }

    @Test("A file that cannot be read or is not JSON says so, naming GATEWAY_CONFIG")
    func files() async throws {
        try await withTemporaryDirectory { directory in
            do {
                _ = try GatewayConfiguration.load(path: directory.path + "/missing.json", environment: [:])
                Issue.record("a missing file was accepted")
            } catch let error as GatewayConfigurationError {
                #expect(error.problems[0].contains("cannot be read"))
            }
            let path = directory.appendingPathComponent("bad.json")
            try Data("{ not json".utf8).write(to: path)
            do {
                _ = try GatewayConfiguration.load(path: path.path, environment: [:])
                Issue.record("a file that is not JSON was accepted")
            } catch let error as GatewayConfigurationError {
                #expect(error.problems[0].contains("not JSON"))
            }
        }
    }
}

@Suite("Gateway routes", .defaultPass)
struct TierRouterTests {
    @Test("Rules by tool, by predicates on the input, by size; input.tier wins; the last rule is the default")
    func rules() throws {
        let router = TierRouter(configuration: try GatewayConfiguration.parse(GatewayConfigurationTests.good, environment: ["UPSTREAM_KEY": "k"]))
        #expect(try router.tiers(for: ["input": ["q": 1]], tool: "memory_retrieve", inputBytes: 10) == ["light"])
        #expect(try router.tiers(for: ["input": ["task": "embed", "n": 100]], inputBytes: 10) == ["cpu", "gpu"])
        #expect(try router.tiers(for: ["input": ["task": "embed", "n": 101]], inputBytes: 10) == ["light", "cpu", "gpu"])
        #expect(try router.tiers(for: ["input": ["task": "embed"]], inputBytes: 10) == ["light", "cpu", "gpu"])
        #expect(try router.tiers(for: ["input": ["x": 1]], inputBytes: 200_000) == ["gpu"])
        #expect(try router.tiers(for: ["input": ["tier": "cpu", "task": "embed"]], inputBytes: 10) == ["cpu"])
        #expect(throws: TierRouter.Failure.unknownTier("huge", known: ["cpu", "gpu", "light"])) {
            try router.tiers(for: ["input": ["tier": "huge"]], inputBytes: 1)
        }
        #expect(throws: TierRouter.Failure.badTier) { try router.tiers(for: ["input": ["tier": 3]], inputBytes: 1) }
    }

    @Test("Predicates: equals (1 is 1.0), in, exists, min, max, contains, paths with indices")
    func predicates() throws {
        let job: JSONValue = ["input": ["n": 1.0, "messages": [["role": "system"], ["role": "user", "content": "hello world"]], "none": nil]]
        func holds(_ path: String, _ test: JobPredicate.Test) -> Bool { JobPredicate(path: JSONPath(path)!, test: test).holds(in: job) }
        #expect(holds("input.n", .equals(1)))
        #expect(holds("input.messages[1].role", .oneOf(["user", "tool"])))
        #expect(!holds("input.messages[2].role", .exists(true)))
        #expect(holds("input.none", .exists(false)))
        #expect(holds("input.n", .atLeast(1)) && !holds("input.n", .atMost(0.5)))
        #expect(holds("input.messages[1].content", .contains("world")))
        #expect(!holds("input.messages[1].content", .atLeast(1)))
        for bad in ["", "a..b", "a[x]", "a[-1]", "[0]", "a[1"] { #expect(JSONPath(bad) == nil, "\(bad)") }
    }
}

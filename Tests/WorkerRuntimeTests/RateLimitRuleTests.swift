import Testing
import TestSupport

@testable import WorkerRuntime

@Suite("Rate-limit settings", .defaultPass)
struct RateLimitRuleTests {
    @Test("Budgets read as requests/window, with ms, s, m, h or bare seconds", arguments: [
        ("100/10s", 100, Duration.seconds(10)), ("5/1m", 5, .seconds(60)), ("1000/1h", 1000, .seconds(3600)),
        ("20/500ms", 20, .milliseconds(500)), ("10/30", 10, .seconds(30)), (" 7 / s ", 7, .seconds(1)),
    ])
    func parsing(text: String, limit: Int, window: Duration) {
        #expect(RateLimitRule(parsing: text) == RateLimitRule(limit: limit, window: window))
    }

    @Test("Malformed budgets are refused", arguments: ["", "100", "0/10s", "-1/10s", "ten/10s", "10/0s", "10/-5s", "10/5d", "10/10s/2", "10/99999999h"])
    func malformed(text: String) {
        #expect(RateLimitRule(parsing: text) == nil)
    }

    @Test("Paths map to their route under / and /v2/{id}/; the others are not limited")
    func routes() {
        #expect(RateLimitedRoute.of(path: "/run") == .run)
        #expect(RateLimitedRoute.of(path: "/v2/abc/runsync") == .runsync)
        #expect(RateLimitedRoute.of(path: "/v2/abc/status-sync/job-1") == .status)
        #expect(RateLimitedRoute.of(path: "/status/job-1") == .status)
        #expect(RateLimitedRoute.of(path: "/purge-queue") == .purgeQueue)
        #expect(RateLimitedRoute.of(path: "/openai/v1/chat/completions") == .openai)
        #expect(RateLimitedRoute.of(path: "/v2/abc/mcp") == .mcp)
        #expect(RateLimitedRoute.of(path: "/ping") == nil)
        #expect(RateLimitedRoute.of(path: "/") == nil)
    }
}

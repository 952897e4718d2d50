import Testing
import TestSupport

@testable import WorkerEndpointServer
import WorkerMCP
@testable import WorkerRuntime

/// The Host and Origin rules MCP clients meet at `/mcp`: the endpoint server's for every route
/// (`HostOriginPolicy`, applied by its request guard).
@Suite("MCP Host and Origin checks", .defaultPass)
struct MCPAccessPolicyTests {
    @Test("local without a key: loopback names only; foreign Origins are 403, foreign Hosts 421")
    func local() throws {
        let policy = HostOriginPolicy(server: ServerConfiguration(), endpointID: nil)
        #expect(policy.check(host: "127.0.0.1:8000", origin: nil) == nil)
        #expect(policy.check(host: "localhost:8000", origin: "http://localhost:3000") == nil)
        #expect(policy.check(host: "[::1]:8000", origin: nil) == nil)
        #expect(policy.check(host: "evil.example:8000", origin: nil)?.status == 421)
        #expect(policy.check(host: "127.0.0.1:8000", origin: "https://evil.example")?.status == 403)
        #expect(policy.check(host: "127.0.0.1:8000", origin: "null")?.status == 403)
    }

    @Test("load balancing: RunPod's endpoint host is allowed by default; MCP_ALLOWED_* add names")
    func loadBalancing() throws {
        let resolved = try WorkerRuntime.resolve(
            arguments: [],
            environment: [
                "PORT": "8080", "RUNPOD_ENDPOINT_ID": "abc123", "MCP_ALLOWED_HOSTS": "tools.example.com, *.internal",
                "MCP_ALLOWED_ORIGINS": "https://app.example.com",
            ], features: [.endpointServer()])
        let server = try #require(resolved.mode.settings(as: ServerConfiguration.self))
        #expect(server.kind == .loadBalancing && server.host == "0.0.0.0")
        let policy = HostOriginPolicy(server: server, endpointID: resolved.configuration.endpointID)
        #expect(policy.check(host: "abc123.api.runpod.ai", origin: nil) == nil)
        #expect(policy.check(host: "other.api.runpod.ai", origin: nil) == nil)
        #expect(policy.check(host: "tools.example.com", origin: nil) == nil)
        #expect(policy.check(host: "a.b.internal", origin: nil) == nil)
        #expect(policy.check(host: "internal", origin: nil)?.status == 421)
        #expect(policy.check(host: "0.0.0.0", origin: nil)?.status == 421)
        #expect(policy.check(host: "abc123.api.runpod.ai", origin: "https://app.example.com") == nil)
        #expect(policy.check(host: "abc123.api.runpod.ai", origin: "https://abc123.api.runpod.ai") == nil)
        #expect(policy.check(host: "abc123.api.runpod.ai", origin: "https://evil.example")?.status == 403)
    }

    @Test("with an API key any Host is fine (a rebinding page has no key), but foreign Origins are still refused")
    func withKey() throws {
        let policy = HostOriginPolicy(server: ServerConfiguration(host: "0.0.0.0", apiKey: "k"), endpointID: nil)
        #expect(policy.check(host: "10.1.2.3:8000", origin: nil) == nil)
        #expect(policy.check(host: "10.1.2.3:8000", origin: "http://10.1.2.3:8000") == nil)
        #expect(policy.check(host: "10.1.2.3:8000", origin: "https://evil.example")?.status == 403)
    }
}

/// `--mcp`, the MCP feature's flag.
@Suite("MCP's mode", .defaultPass)
struct MCPModeTests {
    @Test("--mcp selects stdio MCP over --local and the queue; --test-input still wins; without the feature it is unknown")
    func modes() throws {
        let features: [WorkerFeature] = [.endpointServer(), .mcp()]
        #expect(try WorkerRuntime.resolve(arguments: ["--mcp"], environment: [:], features: features).mode == .feature(.mcpStdio))
        #expect(try WorkerRuntime.resolve(arguments: ["--local", "--mcp"], environment: [:], features: features).mode == .feature(.mcpStdio))
        #expect(
            try WorkerRuntime.resolve(arguments: ["--mcp", "--test-input", "{}"], environment: [:], features: features).mode
                == .oneShot(testInput: "{}"))
        do {
            _ = try WorkerRuntime.resolve(arguments: ["--mcp"], environment: [:], features: [.endpointServer()])
            Issue.record("--mcp accepted without the MCP feature")
        } catch {
            #expect(error.description.contains("--mcp") && error.description.contains(".mcp()"))
        }
    }
}

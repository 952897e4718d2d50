import TestSupport
import Testing
import WorkerJSON
import WorkerRuntime
@testable import MCPAuth

@Suite("MCP authorization settings", .defaultPass)
struct MCPAuthSettingsTests {
    let tools = ["echo", "store"]

    func read(_ environment: [String: String]) throws(ConfigurationError) -> MCPAuthSettings? {
        try MCPAuthSettings.read(EnvironmentReader(environment), tools: tools)
    }

    @Test("MCP_AUTH_ISSUER and MCP_RESOURCE_URL turn it on; the defaults are documented ones")
    func defaults() throws {
        #expect(try read([:]) == nil)
        let settings = try #require(
            try read([
                "MCP_AUTH_ISSUER": "https://auth.example.com/realms/tools", "MCP_RESOURCE_URL": "https://mem.example.com/mcp",
                "MCP_AUTH_SCOPES": "mcp:tools, profile", "MCP_TOOL_SCOPES": "store=memory:write memory:admin; echo=",
            ]))
        #expect(settings.requiredScopes == ["mcp:tools", "profile"])
        #expect(settings.toolScopes == ["store": ["memory:write", "memory:admin"], "echo": []])
        #expect(settings.leeway == .seconds(60) && settings.refetchInterval == .seconds(30))
        #expect(settings.scopes(forTool: "store", declared: ["x"]) == ["memory:write", "memory:admin"])
        #expect(settings.scopes(forTool: "other", declared: ["x"]) == ["x"])
        // A local authorization server while developing.
        #expect(try read(["MCP_AUTH_ISSUER": "http://127.0.0.1:9000", "MCP_RESOURCE_URL": "http://localhost:8000/mcp"]) != nil)
    }

    @Test("Every bad value is refused, naming its variable")
    func refusals() {
        let good = ["MCP_AUTH_ISSUER": "https://a.example", "MCP_RESOURCE_URL": "https://r.example/mcp"]
        let cases: [([String: String], String)] = [
            (["MCP_RESOURCE_URL": "https://r.example/mcp"], "MCP_RESOURCE_URL"),
            (["MCP_AUTH_SCOPES": "a"], "MCP_AUTH_SCOPES"),
            (["MCP_AUTH_CLIENT_SECRET": "s"], "MCP_AUTH_CLIENT_SECRET"),
            (["MCP_AUTH_ISSUER": "https://a.example"], "MCP_RESOURCE_URL"),
            (["MCP_AUTH_ISSUER": "http://auth.example.com", "MCP_RESOURCE_URL": "https://r.example/mcp"], "MCP_AUTH_ISSUER"),
            (["MCP_AUTH_ISSUER": "ftp://a.example", "MCP_RESOURCE_URL": "https://r.example/mcp"], "MCP_AUTH_ISSUER"),
            (good.merging(["MCP_RESOURCE_URL": "https://r.example/mcp#x"]) { $1 }, "MCP_RESOURCE_URL"),
            (good.merging(["MCP_RESOURCE_URL": "not a url"]) { $1 }, "MCP_RESOURCE_URL"),
            (good.merging(["MCP_AUTH_SCOPES": "a \"b\""]) { $1 }, "MCP_AUTH_SCOPES"),
            (good.merging(["MCP_TOOL_SCOPES": "nosuchtool=a"]) { $1 }, "MCP_TOOL_SCOPES"),
            (good.merging(["MCP_TOOL_SCOPES": "echo"]) { $1 }, "MCP_TOOL_SCOPES"),
            (good.merging(["MCP_AUTH_INTROSPECTION_URL": "http://idp.example/introspect"]) { $1 }, "MCP_AUTH_INTROSPECTION_URL"),
            (good.merging(["MCP_AUTH_CLIENT_ID": "id"]) { $1 }, "MCP_AUTH_CLIENT_SECRET"),
            (good.merging(["MCP_AUTH_CLIENT_ID": "a:b", "MCP_AUTH_CLIENT_SECRET": "s"]) { $1 }, "MCP_AUTH_CLIENT_ID"),
            (good.merging(["MCP_AUTH_LEEWAY_SECONDS": "301"]) { $1 }, "MCP_AUTH_LEEWAY_SECONDS"),
            (good.merging(["MCP_AUTH_JWKS_REFETCH_SECONDS": "0"]) { $1 }, "MCP_AUTH_JWKS_REFETCH_SECONDS"),
            // A misspelt name would leave authorization off or weaker without a word.
            (["MCP_AUTH_ISSEUR": "https://a.example"], "MCP_AUTH_ISSEUR"),
            (good.merging(["MCP_AUTH_SCOPE": "mcp:tools"]) { $1 }, "MCP_AUTH_SCOPE"),
            (["MCP_AUTH_ISSUER": "http://127.evil.com", "MCP_RESOURCE_URL": "https://r.example/mcp"], "MCP_AUTH_ISSUER"),
            (["MCP_AUTH_ISSUER": "http://127.0.0.1.nip.io", "MCP_RESOURCE_URL": "https://r.example/mcp"], "MCP_AUTH_ISSUER"),
            (good.merging(["MCP_AUTH_ISSUER": "https://a.example/?q=1"]) { $1 }, "MCP_AUTH_ISSUER"),
            (good.merging(["MCP_AUTH_ISSUER": "https://u:p@a.example"]) { $1 }, "MCP_AUTH_ISSUER"),
            (good.merging(["MCP_AUTH_SCOPES": ",, ,"]) { $1 }, "MCP_AUTH_SCOPES"),
            (good.merging(["MCP_TOOL_SCOPES": "echo=a;echo=b"]) { $1 }, "MCP_TOOL_SCOPES"),
        ]
        for (environment, name) in cases {
            do {
                _ = try read(environment)
                Issue.record("\(environment) was accepted")
            } catch {
                #expect(error.variable == name, "\(environment): \(error)")
            }
        }
    }

    @Test("Loopback is localhost, ::1 and 127.0.0.0/8 written as an address, not a name that starts like one")
    func loopback() {
        for host in ["localhost", "::1", "[::1]", "127.0.0.1", "127.1.2.3"] { #expect(MCPAuthSettings.isLoopback(host), "\(host)") }
        for host in ["127.evil.com", "127.0.0.1.nip.io", "localhost.evil.com", "128.0.0.1", "127.0.0.256", "10.0.0.1"] {
            #expect(!MCPAuthSettings.isLoopback(host), "\(host)")
        }
    }

    @Test("Metadata is discovered where RFC 8414 and OpenID put it, in MCP's order")
    func discovery() {
        #expect(
            IssuerMetadata.discoveryURLs(issuer: "https://auth.example.com/realms/tools/")
                == [
                    "https://auth.example.com/.well-known/oauth-authorization-server/realms/tools",
                    "https://auth.example.com/.well-known/openid-configuration/realms/tools",
                    "https://auth.example.com/realms/tools/.well-known/openid-configuration",
                ])
        #expect(
            IssuerMetadata.discoveryURLs(issuer: "http://127.0.0.1:9000")
                == ["http://127.0.0.1:9000/.well-known/oauth-authorization-server", "http://127.0.0.1:9000/.well-known/openid-configuration"])
        #expect(IssuerMetadata.sameURL("https://t.auth0.com/", "https://t.auth0.com"))
        #expect(!IssuerMetadata.sameURL("https://t.auth0.com/x", "https://t.auth0.com"))
    }

    @Test("The resource's metadata URL keeps its path (RFC 9728 §3.1); the document lists every scope once")
    func resource() {
        var settings = MCPAuthSettings(issuer: "https://a.example", resource: "https://mem.example.com:8443/v2/abc/mcp")
        settings.requiredScopes = ["mcp:tools"]
        let resource = ProtectedResource(settings: settings, toolScopes: ["memory:write", "mcp:tools"], name: "memory")
        #expect(resource.metadataURL == "https://mem.example.com:8443/.well-known/oauth-protected-resource/v2/abc/mcp")
        #expect(resource.document()["scopes_supported"] == ["mcp:tools", "memory:write"])
        #expect(resource.document()["authorization_servers"] == ["https://a.example"])
        #expect(resource.document()["bearer_methods_supported"] == ["header"])
    }

    @Test("Challenges follow RFC 6750: quoted values without quotes or backslashes inside")
    func challenges() {
        let url = "https://r.example/.well-known/oauth-protected-resource/mcp"
        #expect(AuthRefusal.missing(scopes: ["a", "b"]).challenge(metadataURL: url) == "Bearer resource_metadata=\"\(url)\", scope=\"a b\"")
        #expect(AuthRefusal.missing(scopes: []).challenge(metadataURL: url) == "Bearer resource_metadata=\"\(url)\"")
        let bad = AuthRefusal.invalidToken("the \"kid\" is \\ unknown")
        #expect(bad.status == 401)
        #expect(bad.challenge(metadataURL: url) == "Bearer resource_metadata=\"\(url)\", error=\"invalid_token\", error_description=\"the 'kid' is ' unknown\"")
        let scope = AuthRefusal.insufficientScope(["mcp:tools", "memory:write"], "needs memory:write")
        #expect(scope.status == 403)
        #expect(scope.challenge(metadataURL: url)?.contains("error=\"insufficient_scope\", scope=\"mcp:tools memory:write\"") == true)
        #expect(AuthRefusal.invalidRequest("query").status == 400)
        let down = AuthRefusal.unavailable("down")
        #expect(down.status == 503 && down.retryAfter == 2 && down.challenge(metadataURL: url) == nil)
    }

    @Test("Keys are fetched when missing, stale, or asked for by an unknown kid, never more often than the interval")
    func refreshPolicy() {
        let policy = KeyRefreshPolicy(refetchInterval: .seconds(30), maxAge: .seconds(3600))
        let now = ContinuousClock.now
        var state = KeyRefreshPolicy.State()
        #expect(policy.decide(state, keyKnown: false, now: now) == .fetch)
        state.lastAttempt = now
        state.lastAttemptFailed = true
        #expect(policy.decide(state, keyKnown: false, now: now + .seconds(1)) == .unavailable)
        #expect(policy.decide(state, keyKnown: false, now: now + .seconds(3)) == .fetch)
        state = KeyRefreshPolicy.State()
        state.hasKeys = true
        state.fetchedAt = now
        state.lastAttempt = now
        #expect(policy.decide(state, keyKnown: true, now: now + .seconds(10)) == .use)
        #expect(policy.decide(state, keyKnown: false, now: now + .seconds(10)) == .unknownKey)
        #expect(policy.decide(state, keyKnown: false, now: now + .seconds(31)) == .fetch)
        #expect(policy.decide(state, keyKnown: true, now: now + .seconds(3601)) == .useAndRefresh)
        // A refetch a moment ago (for an unknown kid) holds back the age refresh too.
        state.lastAttempt = now + .seconds(3600)
        #expect(policy.decide(state, keyKnown: true, now: now + .seconds(3601)) == .use)
    }
}

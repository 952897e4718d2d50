import CurlHTTP
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import MCPAuth
import NIOCore
import Testing
import TestSupport
import WorkerJSON
import WorkerRuntimeTesting

@testable import WorkerEndpointServer
@testable import WorkerMCP
@testable import WorkerRuntime

/// `/mcp` as an OAuth protected resource, through the endpoint server's router: what is public,
/// what is refused and how, and the API key beside tokens. (Tokens themselves: MCPAuthTests, and
/// Tests/python/test_mcp_auth.py against a real authorization server.)
@Suite("MCP authorization on the routes", .defaultPass)
struct MCPAuthorizationRouteTests {
    static let httpClient = CurlHTTPClient(name: "mcp-auth-route-tests")
    static let call: JSONValue = ["jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": ["name": "echo", "arguments": ["x": 1]]]

    func withServer(apiKey: String?, _ body: @escaping @Sendable (any TestClientProtocol) async throws -> Void) async throws {
        let environment = [
            // Nothing listens there: the verifier's fetch fails, which these tests never need.
            "MCP_AUTH_ISSUER": "http://127.0.0.1:9", "MCP_RESOURCE_URL": "https://tools.example.com/v2/abc/mcp", "MCP_AUTH_SCOPES": "mcp:tools",
        ]
        let options = WorkerOptions(tools: [WorkerTool(name: "echo", description: "Echoes.", scopes: ["echo:run"])])
        let settings = try #require(try MCPAuthSettings.read(EnvironmentReader(environment), tools: ["echo"]))
        let metrics = PrometheusMetrics()
        let context = WorkerContext(
            handler: TestEchoHandler(), options: options, configuration: try WorkerConfiguration.fromEnvironment([:]),
            settings: FeatureSettings([settings]), logger: Logger(label: "test"), httpClient: Self.httpClient,
            metrics: WorkerMetrics(factory: metrics.factory), features: [.mcp()])
        let endpoint = try EndpointServer(context: context, configuration: ServerConfiguration(apiKey: apiKey), metrics: metrics)
        context.health.set(.ready)
        try await Application(router: endpoint.makeRouter()).test(.router) { client in
            try await withTimeout { try await body(client) }
        }
    }

    static func post(_ client: any TestClientProtocol, _ uri: String = "/mcp", authorization: String? = nil) async throws -> (Int, HTTPFields, JSONValue?) {
        var headers: HTTPFields = [.accept: "application/json", .contentType: "application/json"]
        if let authorization { headers[.authorization] = authorization }
        return try await client.execute(uri: uri, method: .post, headers: headers, body: ByteBuffer(bytes: try call.serialized())) { response in
            (Int(response.status.code), response.headers, try? JSONValue.parse(response.body.readableBytesView))
        }
    }

    @Test("The metadata is public at every documented path, even with an API key; it names the issuer and every scope")
    func metadata() async throws {
        try await withServer(apiKey: "sekret") { client in
            for path in [
                "/.well-known/oauth-protected-resource", "/.well-known/oauth-protected-resource/v2/abc/mcp",
                "/v2/abc/.well-known/oauth-protected-resource", "/v2/abc/.well-known/oauth-protected-resource/mcp",
            ] {
                try await client.execute(uri: path, method: .get) { response in
                    #expect(response.status == .ok, "\(path)")
                    let document = try JSONValue.parse(response.body.readableBytesView)
                    #expect(document["resource"] == "https://tools.example.com/v2/abc/mcp")
                    #expect(document["authorization_servers"] == ["http://127.0.0.1:9"])
                    #expect(document["scopes_supported"] == ["mcp:tools", "echo:run"])
                }
            }
        }
    }

    @Test("No token: 401 with the metadata's URL and the scopes; the key gets through /mcp; other routes still need the key")
    func challenges() async throws {
        try await withServer(apiKey: "sekret") { client in
            for uri in ["/mcp", "/v2/abc/mcp"] {
                let (status, headers, body) = try await Self.post(client, uri)
                #expect(status == 401)
                #expect(
                    headers[.wwwAuthenticate]
                        == "Bearer resource_metadata=\"https://tools.example.com/.well-known/oauth-protected-resource/v2/abc/mcp\", scope=\"mcp:tools\"")
                #expect(body?["error"]?["code"] == -32001)
            }
            let (status, _, body) = try await Self.post(client, authorization: "Bearer sekret")
            #expect(status == 200 && body?["result"]?["structuredContent"] == ["x": 1])
            let (garbage, headers, _) = try await Self.post(client, authorization: "Bearer x.y.z")
            #expect(garbage == 401 && headers[.wwwAuthenticate]?.contains("error=\"invalid_token\"") == true)
            let (inQuery, _, _) = try await Self.post(client, "/mcp?access_token=abc", authorization: "Bearer sekret")
            #expect(inQuery == 400)
            try await client.execute(uri: "/health", method: .get) { response in #expect(response.status == .unauthorized) }
            // Another group's route that ends like MCP's keeps the key check.
            for uri in ["/openai/v1/mcp", "/v2/abc/openai/v1/mcp"] {
                let (status, _, _) = try await Self.post(client, uri)
                #expect(status == 401, "\(uri)")
            }
            try await client.execute(uri: "/health", method: .get, headers: [.authorization: "Bearer sekret"]) { response in
                #expect(response.status == .ok)
            }
        }
    }

    @Test("Without an API key, a JWT-looking token for an issuer that is down is a 503 that says why")
    func issuerDown() async throws {
        try await withServer(apiKey: nil) { client in
            let token = "eyJhbGciOiJSUzI1NiIsImtpZCI6ImsxIn0.eyJpc3MiOiJ4In0.c2ln"
            let (status, headers, body) = try await Self.post(client, authorization: "Bearer \(token)")
            #expect(status == 503 && headers[.retryAfter] == "2")
            #expect(body?["error"]?["message"]?.stringValue?.contains("could not be reached") == true)
        }
    }
}

@Suite("MCP authorization: the paths it checks itself", .defaultPass)
struct MCPAuthorizationPathTests {
    @Test("Exactly /mcp and the metadata, at the root or under /v2/{id}/: no other route escapes the API key")
    func paths() {
        for path in [
            "/mcp", "/v2/abc/mcp", "/.well-known/oauth-protected-resource", "/.well-known/oauth-protected-resource/mcp",
            "/v2/abc/.well-known/oauth-protected-resource", "/v2/abc/.well-known/oauth-protected-resource/v2/abc/mcp",
        ] {
            #expect(MCPAuthorization.ownsPath(path), "\(path)")
        }
        for path in [
            "/openai/v1/mcp", "/openai/v1/chat/completions/mcp", "/openai/v1/x/.well-known/oauth-protected-resource", "/v2/abc/openai/v1/mcp",
            "/run/mcp", "/v2//mcp", "/v2/abc/def/mcp", "/mcpx", "/.well-known/oauth-protected-resourcex", "/x/mcp",
        ] {
            #expect(!MCPAuthorization.ownsPath(path), "\(path)")
        }
    }
}

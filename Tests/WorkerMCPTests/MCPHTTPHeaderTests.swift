import CurlHTTP
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import Testing
import TestSupport
import WorkerJSON
import WorkerRuntimeTesting

@testable import WorkerEndpointServer
@testable import WorkerMCP
@testable import WorkerRuntime

/// `/mcp`'s header checks through the endpoint server's router (its request guard included).
@Suite("MCP over HTTP: Accept, Content-Type, Origin", .defaultPass)
struct MCPHTTPHeaderTests {
    static let httpClient = CurlHTTPClient(name: "mcp-header-tests")
    static let ping: JSONValue = ["jsonrpc": "2.0", "id": 1, "method": "ping"]

    /// An echo worker with MCP, served in process (no socket) while `body` runs.
    func withMCPServer(_ body: @escaping @Sendable (any TestClientProtocol) async throws -> Void) async throws {
        let configuration = try WorkerConfiguration.fromEnvironment([:])
        let metrics = PrometheusMetrics()
        let context = WorkerContext(
            handler: TestEchoHandler(), options: WorkerOptions(), configuration: configuration, logger: Logger(label: "test"),
            httpClient: Self.httpClient, metrics: WorkerMetrics(factory: metrics.factory), features: [.mcp()])
        let endpoint = try EndpointServer(context: context, configuration: ServerConfiguration(), metrics: metrics)
        context.health.set(.ready)
        try await Application(router: endpoint.makeRouter()).test(.router) { client in
            try await withTimeout { try await body(client) }
        }
    }

    /// POSTs a ping to `/mcp` with `headers`; the status and the JSON answer.
    static func post(_ client: any TestClientProtocol, _ headers: HTTPFields) async throws -> (Int, JSONValue?) {
        let bytes = try ping.serialized()
        return try await client.execute(uri: "/mcp", method: .post, headers: headers, body: ByteBuffer(bytes: bytes)) { response in
            (Int(response.status.code), try? JSONValue.parse(response.body.readableBytesView))
        }
    }

    @Test(
        "an Accept whose only JSON and SSE ranges have q=0 is refused like a missing type (406); real weights and wildcards are taken",
        arguments: [
            ("application/json;q=0", 406), ("application/json;q=0, text/event-stream;q=0", 406), ("application/json; q=0", 406),
            ("text/event-stream;q=0", 406), ("text/html", 406),
            ("application/json", 200), ("application/json;q=0.5", 200), ("application/json, text/event-stream", 200),
            ("*/*", 200), ("application/*", 200), ("*/*;q=0, application/json", 200),
        ])
    func accept(header: String, status: Int) async throws {
        try await withMCPServer { client in
            let (answered, body) = try await Self.post(client, [.accept: header, .contentType: "application/json"])
            #expect(answered == status, "\(header): \(String(describing: body))")
            if status == 200 { #expect(body?["result"] == [:]) }
        }
    }

    @Test("a client that takes only SSE (by name, or by a wildcard beside JSON at q=0) gets the answer as one SSE event", arguments: [
        "text/event-stream", "application/json;q=0, */*",
    ])
    func sseOnly(header: String) async throws {
        try await withMCPServer { client in
            let body = ByteBuffer(string: #"{"jsonrpc":"2.0","id":1,"method":"ping"}"#)
            try await client.execute(uri: "/mcp", method: .post, headers: [.accept: header, .contentType: "application/json"], body: body) { response in
                #expect(response.status.code == 200, "\(header)")
                #expect(response.headers[.contentType] == "text/event-stream", "\(header)")
                let text = String(buffer: response.body)
                #expect(text.hasPrefix("event: message\ndata: ") && text.contains(#""result":{}"#), "\(text)")
            }
        }
    }

    @Test("no Accept at all is taken as JSON; a Content-Type that is not JSON is 415 as a JSON-RPC error, a JSON one with a charset is fine")
    func contentTypes() async throws {
        try await withMCPServer { client in
            #expect(try await Self.post(client, [.contentType: "application/json"]).0 == 200)
            #expect(try await Self.post(client, [.contentType: "application/json; charset=utf-8"]).0 == 200)
            let (status, body) = try await Self.post(client, [.contentType: "text/plain;charset=UTF-8"])
            #expect(status == 415)
            #expect(body?["jsonrpc"] == "2.0" && body?["id"] == .null, "\(String(describing: body))")
            #expect(body?["error"]?["code"] == -32600, "\(String(describing: body))")
        }
    }

    @Test("the server's guard answers /mcp in JSON-RPC: a foreign Origin is 403 with id null; other paths keep the endpoint API's shape")
    func guardShape() async throws {
        try await withMCPServer { client in
            let (status, body) = try await Self.post(client, [.contentType: "application/json", .origin: "https://evil.example"])
            #expect(status == 403)
            #expect(body?["error"]?["code"] == -32600, "\(String(describing: body))")
            #expect(body?["error"]?["message"]?.stringValue?.contains("evil.example") == true)
            #expect(body?["id"] == .null)
            let run = try await client.execute(
                uri: "/v2/x/runsync", method: .post, headers: [.contentType: "application/json", .origin: "https://evil.example"],
                body: ByteBuffer(string: #"{"input":1}"#)
            ) { try? JSONValue.parse($0.body.readableBytesView) }
            #expect(run?["error"]?.stringValue?.contains("evil.example") == true, "\(String(describing: run))")
        }
        let group = MCPHTTPRoute.group(inFlight: MCPInFlight())
        #expect(group.refusal?("/v2/abc/mcp", .misdirectedRequest, "Host 'x' is not a name this server answers to")?.status == .misdirectedRequest)
        #expect(group.refusal?("/runsync", .misdirectedRequest, "Host 'x'") == nil)
    }
}

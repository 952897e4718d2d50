import CurlHTTP
import GatewayCore
import HTTPTypes
import Hummingbird
import LoopbackServer
import Logging
import NIOCore
import Synchronization
import Testing
import TestSupport
import WorkerJSON
import WorkerRuntime
import WorkerRuntimeTesting

@testable import Gateway

/// The gateway's MCP aggregation against an MCP server served in process.
@Suite("The gateway's MCP tools", .defaultPass)
struct GatewayMCPTests {
    static let http = CurlHTTPClient(name: "gateway-mcp-tests")

    /// A stateless MCP server with one tool, `shout`, answering with JSON, or with SSE (two
    /// progress updates, then the result) when the call carries a progress token.
    static func server() -> Router<BasicRequestContext> {
        let router = Router()
        router.post("mcp") { request, _ in
            var request = request
            let message = try JSONValue.parse(try await request.collectBody(upTo: 1 << 20).readableBytesView)
            let id = message["id"] ?? .null
            let result: JSONValue
            switch message["method"]?.stringValue {
            case "tools/list":
                result = ["tools": [
                    ["name": "shout", "description": "Shouts.", "inputSchema": ["type": "object", "properties": ["text": ["type": "string"]]]],
                    ["name": "bad name!", "description": "Not a valid MCP name once prefixed.", "inputSchema": ["type": "object"]],
                ]]
            case "tools/call":
                let text = message["params"]?["arguments"]?["text"]?.stringValue ?? ""
                result = ["content": [["type": "text", "text": .string(text.uppercased())]], "isError": false]
                if let token = message["params"]?["_meta"]?["progressToken"] {
                    var events = ""
                    for step in 1...2 {
                        let note: JSONValue = ["jsonrpc": "2.0", "method": "notifications/progress", "params": ["progressToken": token, "progress": .integer(Int64(step)), "total": 2]]
                        events += "event: message\ndata: \(try note.jsonString())\n\n"
                    }
                    let reply: JSONValue = ["jsonrpc": "2.0", "id": id, "result": result]
                    events += "event: message\ndata: \(try reply.jsonString())\n\n"
                    return Response(status: .ok, headers: [.contentType: "text/event-stream"], body: .init(byteBuffer: ByteBuffer(string: events)))
                }
            default:
                result = [:]
            }
            let reply: JSONValue = ["jsonrpc": "2.0", "id": id, "result": result]
            return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: try reply.serialized())))
        }
        return router
    }

    @Test("Upstream tools are listed as <upstream>_<tool> (invalid names left out), calls are forwarded, results passed on as they are")
    func aggregation() async throws {
        try await runOnLoopback(Self.server()) { base in
            let configuration = try GatewayConfiguration.parse(["upstreams": [["name": "loud", "mcp_url": .string(base + "/mcp")]]], environment: [:])
            let pool = UpstreamPool(configuration: configuration)
            let tools = MCPUpstreams(
                configuration: configuration, http: Self.http, own: [Gateway.ownTool], serverName: "gateway", instructions: nil, logger: Logger(label: "test"))
            #expect(await tools.refresh())
            #expect(tools.catalog.tools.map(\.name) == ["gateway", "loud_shout"])
            #expect(tools.catalog.skipped.count == 1)
            let handler = GatewayHandler(
                router: TierRouter(configuration: configuration), pool: pool, clients: [nil], openAI: GatewayOpenAI(pool: pool, client: Self.http),
                tools: tools)
            let runtime = WorkerRuntime(handler: handler, options: WorkerOptions(name: "gateway"))
            let shout = try #require(tools.catalog.tool(named: "loud_shout"))
            let result = try await runtime.test(shout.jobInput(arguments: ["text": "hi"]))
            #expect(result.output == ["content": [["type": "text", "text": "HI"]], "isError": false], "\(result)")
            // A tool no upstream offers any more: a clear error, and a refresh asked for.
            let gone = try await runtime.test(["mcp_call": ["name": "quiet/whisper", "arguments": [:]]])
            #expect(gone.error?.contains("no longer offered") == true)
            #expect(tools.takeRefreshAsked())
        }
    }

    @Test("A server's SSE answer: progress passed on as it comes, then the reply to this call")
    func progress() async throws {
        try await runOnLoopback(Self.server()) { base in
            let client = MCPUpstreamClient(url: base + "/mcp", apiKey: nil, http: Self.http, timeout: .seconds(5))
            let seen = ProgressLog()
            let result = try await client.callTool("shout", arguments: ["text": "a"]) { seen.add($0) }
            #expect(result["content"]?[0]?["text"] == "A")
            #expect(seen.values.compactMap { $0["progress"]?.intValue } == [1, 2])
        }
    }

    @Test("SSE events are cut at blank lines, across chunks, with CRLF, data lines joined")
    func events() {
        var events = SSEEvents()
        #expect(events.feed(Array("event: message\ndata: {\"a\"".utf8)).isEmpty)
        #expect(events.feed(Array(":1}\n\ndata: x\r\ndata: y\r\n\r\nid: 3\n\n".utf8)) == [Array("{\"a\":1}".utf8), Array("x\ny".utf8)])
    }

    /// A server whose tools/list never ends: every page has 100 tools and a next cursor.
    static func endless() -> Router<BasicRequestContext> {
        let router = Router()
        router.post("mcp") { request, _ in
            var request = request
            let message = try JSONValue.parse(try await request.collectBody(upTo: 1 << 20).readableBytesView)
            let page = message["params"]?["cursor"]?.intValue ?? 0
            let tools = (0..<100).map { index -> JSONValue in
                ["name": .string("t\(page)_\(index)"), "description": "One of many.", "inputSchema": ["type": "object"]]
            }
            let reply: JSONValue = ["jsonrpc": "2.0", "id": message["id"] ?? .null, "result": ["tools": .array(tools), "nextCursor": .integer(Int64(page + 1))]]
            return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: try reply.serialized())))
        }
        return router
    }

    @Test("A server listing tools without end is cut off past 1,000 tools with an error naming the limit; the other servers' tools are listed")
    func endlessList() async throws {
        try await runOnLoopback(Self.endless()) { endless in
            try await runOnLoopback(Self.server()) { base in
                let client = MCPUpstreamClient(url: endless + "/mcp", apiKey: nil, http: Self.http, timeout: .seconds(5))
                await #expect(throws: MCPUpstreamClient.Failure.self) { try await client.listTools() }
                do {
                    _ = try await client.listTools()
                } catch {
                    #expect("\(error)".contains("more than 1000 tools"), "\(error)")
                }
                let configuration = try GatewayConfiguration.parse(
                    ["upstreams": [["name": "many", "mcp_url": .string(endless + "/mcp")], ["name": "loud", "mcp_url": .string(base + "/mcp")]]],
                    environment: [:])
                let tools = MCPUpstreams(
                    configuration: configuration, http: Self.http, own: [Gateway.ownTool], serverName: "gateway", instructions: nil,
                    logger: Logger(label: "test"))
                _ = await tools.refresh()
                #expect(tools.catalog.tools.map(\.name) == ["gateway", "loud_shout"])
            }
        }
    }

    @Test("An unreachable upstream keeps its last list and is retried; the others are listed")
    func unreachable() async throws {
        let configuration = try GatewayConfiguration.parse(["upstreams": [["name": "gone", "mcp_url": "http://127.0.0.1:9/mcp"]]], environment: [:])
        let tools = MCPUpstreams(
            configuration: configuration, http: Self.http, own: [Gateway.ownTool], serverName: "gateway", instructions: nil, logger: Logger(label: "test"))
        #expect(await tools.refresh() == false)
        #expect(tools.catalog.tools.map(\.name) == ["gateway"])
    }
}

final class ProgressLog: Sendable {
    private let log = Mutex<[JSONValue]>([])
    func add(_ value: JSONValue) { log.withLock { $0.append(value) } }
    var values: [JSONValue] { log.withLock { $0 } }
}

import Testing
import TestSupport
import WorkerJSON

@testable import WorkerMCP
@testable import WorkerRuntime

@Suite("MCP protocol core", .defaultPass)
struct MCPServerCoreTests {
    static let tools = try! ToolCatalog(
        options: WorkerOptions(
            name: "memory", instructions: "Remembers.",
            tools: [
                WorkerTool(
                    name: "store", description: "Stores.", action: "store",
                    inputSchema: [
                        "type": "object", "properties": ["key": ["type": "string"], "k": ["type": "integer", "minimum": 1]],
                        "required": ["key"], "additionalProperties": false,
                    ])
            ]), executable: "memory")
    let core = MCPServerCore(tools: tools, serverVersion: "1.0")

    func request(_ method: String, id: JSONValue = 1, params: JSONValue = [:]) throws -> MCPMessage {
        try MCPMessage.classify(["jsonrpc": "2.0", "id": id, "method": .string(method), "params": params])
    }

    func reply(_ answer: MCPAnswer) -> (JSONValue, Int)? {
        if case .reply(let message, let status) = answer { return (message, status) }
        return nil
    }

    @Test("initialize echoes a supported handshake version and offers the latest for any other")
    func initialize() throws {
        for (asked, chosen) in [("2025-06-18", "2025-06-18"), ("2025-11-25", "2025-11-25"), ("2099-01-01", "2025-11-25")] {
            let answer = core.answer(try request("initialize", params: ["protocolVersion": .string(asked)]), headers: nil)
            let (message, status) = try #require(reply(answer))
            #expect(status == 200)
            #expect(message["result"]?["protocolVersion"] == .string(chosen))
            #expect(message["result"]?["serverInfo"]?["name"] == "memory")
            #expect(message["result"]?["capabilities"]?["tools"] != nil)
            #expect(message["result"]?["instructions"] == "Remembers.")
        }
        // An initialize selects the handshake era even under a 2026 header.
        let modernHeader = MCPRequestHeaders(protocolVersion: "2026-07-28", method: "initialize")
        #expect(reply(core.answer(try request("initialize"), headers: modernHeader))?.1 == 200)
    }

    @Test("ping and tools/list answer without any prior handshake (any replica can answer)")
    func stateless() throws {
        #expect(reply(core.answer(try request("ping"), headers: nil))?.0["result"] == [:])
        let listed = try #require(reply(core.answer(try request("tools/list", id: "x"), headers: MCPRequestHeaders())))
        #expect(listed.0["id"] == "x")
        #expect(listed.0["result"]?["tools"]?[0]?["name"] == "store")
        #expect(listed.0["result"]?["resultType"] == nil)
    }

    @Test("tools/call: a known tool becomes a job with its action and the progress token")
    func call() throws {
        let answer = core.answer(
            try request("tools/call", id: 7, params: ["name": "store", "arguments": ["key": "a"], "_meta": ["progressToken": 3]]),
            headers: nil)
        guard case .call(let call) = answer else { Issue.record("expected a call, got \(answer)"); return }
        #expect(call.input == ["key": "a", "action": "store"])
        #expect(call.progressToken == 3)
        #expect(call.id == 7)
        #expect(!call.modern)
    }

    @Test("tools/call errors: unknown tool is -32602; bad arguments are an isError result naming the field")
    func callErrors() throws {
        let unknown = try #require(reply(core.answer(try request("tools/call", params: ["name": "nope"]), headers: nil)))
        #expect(unknown.0["error"]?["code"] == -32602)
        #expect(unknown.0["error"]?["message"]?.stringValue?.contains("store") == true)

        for (arguments, expected) in [
            (["k": 1] as JSONValue, "arguments.key: is required"), (["key": 5], "arguments.key: expected a string, got number"),
            (["key": "a", "k": 0], "arguments.k: must be at least 1"), (["key": "a", "kk": 1], "arguments.kk: is not a known argument"),
            ("text", "arguments must be an object, got string"),
        ] {
            let answer = core.answer(try request("tools/call", params: ["name": "store", "arguments": arguments]), headers: nil)
            let (message, status) = try #require(reply(answer))
            #expect(status == 200)
            #expect(message["result"]?["isError"] == true)
            let text = message["result"]?["content"]?[0]?["text"]?.stringValue ?? ""
            #expect(text.contains(expected), "\(text)")
        }
    }

    @Test("unknown methods are -32601 (HTTP 404); notifications and responses are accepted; cancel names the request")
    func methodsAndNotifications() throws {
        let unknown = try #require(reply(core.answer(try request("resources/list"), headers: nil)))
        #expect(unknown.0["error"]?["code"] == -32601)
        #expect(unknown.1 == 404)
        #expect(core.answer(try MCPMessage.classify(["jsonrpc": "2.0", "method": "notifications/initialized"]), headers: nil) == .accepted)
        #expect(core.answer(try MCPMessage.classify(["jsonrpc": "2.0", "id": 1, "result": [:]]), headers: nil) == .accepted)
        let cancel = try MCPMessage.classify(["jsonrpc": "2.0", "method": "notifications/cancelled", "params": ["requestId": 4]])
        #expect(core.answer(cancel, headers: nil) == .cancel(requestID: 4))
    }

    @Test("an unsupported MCP-Protocol-Version header is refused with 400 and the supported list")
    func unsupportedHeader() throws {
        let answer = core.answer(try request("tools/list"), headers: MCPRequestHeaders(protocolVersion: "1999-01-01"))
        let (message, status) = try #require(reply(answer))
        #expect(status == 400)
        #expect(message["error"]?["code"] == -32022)
        #expect(message["error"]?["data"]?["requested"] == "1999-01-01")
        let notification = try MCPMessage.classify(["jsonrpc": "2.0", "method": "notifications/initialized"])
        #expect(reply(core.answer(notification, headers: MCPRequestHeaders(protocolVersion: "1999-01-01")))?.1 == 400)
    }

    static let envelope: JSONValue = [
        "io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": [:],
    ]

    @Test("2026-07-28: server/discover, tools/list and tools/call carry resultType; the envelope is checked rung by rung")
    func modern() throws {
        let headers = { (method: String, name: String?) in
            MCPRequestHeaders(protocolVersion: "2026-07-28", method: method, name: name)
        }
        let discover = try #require(
            reply(core.answer(try request("server/discover", params: ["_meta": Self.envelope]), headers: headers("server/discover", nil))))
        #expect(discover.0["result"]?["supportedVersions"]?.arrayValue?.contains("2026-07-28") == true)
        #expect(discover.0["result"]?["resultType"] == "complete")
        #expect(discover.0["result"]?["_meta"]?["io.modelcontextprotocol/serverInfo"]?["name"] == "memory")

        let list = try #require(reply(core.answer(try request("tools/list", params: ["_meta": Self.envelope]), headers: headers("tools/list", nil))))
        #expect(list.0["result"]?["resultType"] == "complete")
        #expect(list.0["result"]?["ttlMs"] != nil)

        let call = core.answer(
            try request("tools/call", params: ["_meta": Self.envelope, "name": "store", "arguments": ["key": "a"]]),
            headers: headers("tools/call", "store"))
        guard case .call(let made) = call else { Issue.record("expected a call"); return }
        #expect(made.modern)
        #expect(MCPToolResult.success(["a": 1], modern: true)["resultType"] == "complete")

        // Rungs: the envelope, then the headers, then the version.
        let noMeta = try #require(reply(core.answer(try request("tools/list"), headers: headers("tools/list", nil))))
        #expect(noMeta.0["error"]?["code"] == -32602)
        let wrongMethod = try #require(
            reply(core.answer(try request("tools/list", params: ["_meta": Self.envelope]), headers: headers("tools/call", nil))))
        #expect(wrongMethod.0["error"]?["code"] == -32020)
        let wrongName = try #require(
            reply(
                core.answer(
                    try request("tools/call", params: ["_meta": Self.envelope, "name": "store"]), headers: headers("tools/call", "other"))))
        #expect(wrongName.0["error"]?["code"] == -32020)
        let base64Name = core.answer(
            try request("tools/call", params: ["_meta": Self.envelope, "name": "store", "arguments": ["key": "a"]]),
            headers: headers("tools/call", "=?base64?c3RvcmU=?="))
        if case .call = base64Name {} else { Issue.record("a base64 Mcp-Name must match: \(base64Name)") }
        var future = Self.envelope.objectValue!
        future["io.modelcontextprotocol/protocolVersion"] = "2030-01-01"
        let unsupported = try #require(
            reply(
                core.answer(
                    try request("tools/list", params: ["_meta": .object(future)]),
                    headers: MCPRequestHeaders(protocolVersion: "2030-01-01", method: "tools/list"))))
        #expect(unsupported.0["error"]?["code"] == -32022)
        #expect(unsupported.1 == 400)
        // ping belongs to the handshake era only.
        #expect(reply(core.answer(try request("ping", params: ["_meta": Self.envelope]), headers: headers("ping", nil)))?.0["error"]?["code"] == -32601)
    }

    @Test("over stdio the envelope's own version selects 2026-07-28; no headers are checked")
    func modernOverStdio() throws {
        let list = try #require(reply(core.answer(try request("tools/list", params: ["_meta": Self.envelope]), headers: nil)))
        #expect(list.0["result"]?["resultType"] == "complete")
        let discoverWithoutEnvelope = try #require(reply(core.answer(try request("server/discover"), headers: nil)))
        #expect(discoverWithoutEnvelope.0["error"]?["code"] == -32602)
    }

    @Test("malformed envelopes: batches, wrong jsonrpc, bad ids and params are -32600")
    func malformed() {
        for body: JSONValue in [
            [["jsonrpc": "2.0", "id": 1, "method": "ping"]], ["jsonrpc": "1.0", "id": 1, "method": "ping"],
            ["jsonrpc": "2.0", "id": ["x": 1], "method": "ping"], ["jsonrpc": "2.0", "id": 1, "method": "ping", "params": [1]],
            ["jsonrpc": "2.0", "id": 1], "text",
        ] {
            #expect(throws: MCPError.self) { try MCPMessage.classify(body) }
        }
    }

    @Test("ids: strings and 64-bit integers only, so every answer echoes its id exactly; a cancel naming 1.0 matches nothing")
    func ids() throws {
        // Parsed from text, as it arrives: 30 digits do not fit 64 bits and would come back as a float.
        for text in [#"{"jsonrpc":"2.0","id":123456789012345678901234567890,"method":"ping"}"#,
            #"{"jsonrpc":"2.0","id":1.5,"method":"ping"}"#, #"{"jsonrpc":"2.0","id":1.0,"method":"ping"}"#]
        {
            let parsed = try JSONValue.parse(Array(text.utf8))
            #expect(throws: MCPError.self, "\(text)") { try MCPMessage.classify(parsed) }
        }
        let big = try JSONValue.parse(Array(#"{"jsonrpc":"2.0","id":9223372036854775807,"method":"ping"}"#.utf8))
        #expect(try MCPMessage.classify(big) == .request(id: .integer(.max), method: "ping", params: [:]))
        let cancelFloat = core.answer(
            .notification(method: "notifications/cancelled", params: ["requestId": .number(1.0)]), headers: nil)
        #expect(cancelFloat == .accepted)
        let cancelOne = core.answer(.notification(method: "notifications/cancelled", params: ["requestId": 1]), headers: nil)
        #expect(cancelOne == .cancel(requestID: 1))
    }

    @Test("progress notifications count up, or pass a handler's own increasing progress and total through")
    func progress() {
        var tracker = ProgressTracker()
        let first = tracker.notification(token: "t", value: ["step": 0])
        #expect(first["params"]?["progress"] == 1)
        #expect(first["params"]?["message"] == "{\"step\":0}")
        let reported = tracker.notification(token: "t", value: ["progress": 40, "total": 100, "message": "loading"])
        #expect(reported["params"]?["progress"] == 40)
        #expect(reported["params"]?["total"] == 100.0)
        #expect(reported["params"]?["message"] == "loading")
        // A smaller reported value must not go backwards.
        #expect(tracker.notification(token: "t", value: ["progress": 10])["params"]?["progress"] == 41)
        #expect(tracker.notification(token: "t", value: "text")["params"]?["message"] == "text")
    }
}

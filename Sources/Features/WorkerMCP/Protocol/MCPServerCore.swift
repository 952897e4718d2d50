#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import WorkerJSON
import WorkerRuntime

/// The headers of a streamable HTTP request that the protocol checks; nil over stdio.
struct MCPRequestHeaders: Sendable, Equatable {
    var protocolVersion: String?
    var method: String?
    var name: String?
}

/// What to do with one client message.
enum MCPAnswer: Equatable {
    /// A notification or a response: nothing to answer (HTTP 202).
    case accepted
    /// `notifications/cancelled` for this request id (HTTP 202).
    case cancel(requestID: JSONValue)
    /// A whole JSON-RPC message, and the HTTP status to send it with.
    case reply(JSONValue, status: Int)
    /// A tool call: run a job, then answer.
    case call(MCPToolCall)
}

/// A tool call, checked and ready to run as a job.
struct MCPToolCall: Equatable, Sendable {
    let id: JSONValue
    let tool: WorkerTool
    let input: JSONValue
    /// Present when the client asked for `notifications/progress`.
    let progressToken: JSONValue?
    /// A 2026-07-28 request: its result carries `resultType`.
    let modern: Bool
}

/// The protocol without its transports: every decision about a message that needs no job.
/// Nothing is kept between messages, so any replica answers any request (RunPod's load
/// balancer sends a client's consecutive requests to different workers).
struct MCPServerCore: Sendable {
    /// The handler's tools, unless `source` supplies them (the gateway's, which change).
    let fixed: ToolCatalog
    let source: (any ToolSource)?
    let serverVersion: String

    init(tools: ToolCatalog, source: (any ToolSource)? = nil, serverVersion: String) {
        self.fixed = tools
        self.source = source
        self.serverVersion = serverVersion
    }

    var tools: ToolCatalog { source?.catalog ?? fixed }

    func answer(_ message: MCPMessage, headers: MCPRequestHeaders?) -> MCPAnswer {
        switch message {
        case .response:
            return .accepted
        case .notification(let method, let params):
            if let version = headers?.protocolVersion, !MCPVersion.all.contains(version) {
                return reply(.unsupportedVersion(version), id: .null)
            }
            // Only ids a request can carry: a 1.0 would otherwise match the call with id 1.
            if method == "notifications/cancelled", let requestID = params["requestId"], requestID.isRequestID {
                return .cancel(requestID: requestID)
            }
            return .accepted
        case .request(let id, let method, let params):
            do throws(MCPError) {
                // An `initialize` selects the handshake era whatever the headers say.
                if method == "initialize" { return .reply(success(initialize(params), id: id), status: 200) }
                if isModern(method: method, params: params, headers: headers) {
                    try checkEnvelope(method: method, params: params, headers: headers)
                    return try modern(id: id, method: method, params: params)
                }
                if let version = headers?.protocolVersion, !MCPVersion.handshake.contains(version) {
                    throw MCPError.unsupportedVersion(version)
                }
                return try handshake(id: id, method: method, params: params)
            } catch {
                return reply(error, id: id)
            }
        }
    }

    // MARK: Eras

    private func handshake(id: JSONValue, method: String, params: [String: JSONValue]) throws(MCPError) -> MCPAnswer {
        switch method {
        case "ping": return .reply(success([:], id: id), status: 200)
        case "tools/list": return .reply(success(["tools": tools.listing], id: id), status: 200)
        case "tools/call": return try call(id: id, params: params, modern: false)
        default: throw .methodNotFound(method)
        }
    }

    private func modern(id: JSONValue, method: String, params: [String: JSONValue]) throws(MCPError) -> MCPAnswer {
        switch method {
        case "server/discover":
            var result: [String: JSONValue] = [
                "supportedVersions": .array(MCPVersion.all.map(JSONValue.string)), "capabilities": capabilities,
                "resultType": "complete", "ttlMs": 60_000, "cacheScope": "public",
                "_meta": [.init(MCPVersion.serverInfoKey): serverInfo],
            ]
            if let instructions = tools.instructions { result["instructions"] = .string(instructions) }
            return .reply(success(.object(result), id: id), status: 200)
        case "tools/list":
            // The list is fixed for a deployment and the same for every caller.
            let result: JSONValue = ["tools": tools.listing, "resultType": "complete", "ttlMs": 60_000, "cacheScope": "public"]
            return .reply(success(result, id: id), status: 200)
        case "tools/call":
            return try call(id: id, params: params, modern: true)
        default:
            throw .methodNotFound(method)
        }
    }

    /// Over HTTP, a version header outside the handshake era selects the per-request envelope
    /// (unknown versions too, so that they are refused with the list of supported ones); over
    /// stdio, the envelope's own version key does.
    private func isModern(method: String, params: [String: JSONValue], headers: MCPRequestHeaders?) -> Bool {
        if method == "server/discover" { return true }
        if let headers {
            guard let version = headers.protocolVersion else { return false }
            return !MCPVersion.handshake.contains(version)
        }
        return params["_meta"]?[MCPVersion.protocolVersionKey] != nil
    }

    /// The 2026-07-28 checks, in the order the specification gives them.
    private func checkEnvelope(method: String, params: [String: JSONValue], headers: MCPRequestHeaders?) throws(MCPError) {
        // A handshake-era client with an unknown version header is told the versions there are.
        if let header = headers?.protocolVersion, !MCPVersion.modern.contains(header),
            params["_meta"]?[MCPVersion.protocolVersionKey] == nil
        {
            throw .unsupportedVersion(header)
        }
        guard case .object(let meta)? = params["_meta"] else {
            throw .invalidParams(
                "params._meta must be an object carrying '\(MCPVersion.protocolVersionKey)' and '\(MCPVersion.clientCapabilitiesKey)'")
        }
        let missing = [MCPVersion.protocolVersionKey, MCPVersion.clientCapabilitiesKey].filter { meta[$0] == nil }
        guard missing.isEmpty else { throw .invalidParams("params._meta is missing \(missing.joined(separator: " and "))") }
        let version = meta[MCPVersion.protocolVersionKey]!
        if let headers {
            guard let header = headers.protocolVersion, .string(header) == version else {
                throw .headerMismatch("the MCP-Protocol-Version header does not match params._meta's protocol version")
            }
            guard headers.method == method else { throw .headerMismatch("the Mcp-Method header does not match the body's method") }
            if method == "tools/call", let name = params["name"], name != .null {
                guard let header = headers.name, .string(Self.decodedHeader(header)) == name else {
                    throw .headerMismatch("the Mcp-Name header does not match params.name")
                }
            }
        }
        guard let text = version.stringValue else { throw .invalidParams("the protocol version in params._meta must be a string") }
        guard MCPVersion.modern.contains(text) else { throw .unsupportedVersion(text) }
    }

    // MARK: Methods

    private func initialize(_ params: [String: JSONValue]) -> JSONValue {
        let requested = params["protocolVersion"]?.stringValue
        let chosen = requested.flatMap { MCPVersion.handshake.contains($0) ? $0 : nil } ?? MCPVersion.latestHandshake
        var result: [String: JSONValue] = [
            "protocolVersion": .string(chosen), "capabilities": capabilities, "serverInfo": serverInfo,
        ]
        if let instructions = tools.instructions { result["instructions"] = .string(instructions) }
        return .object(result)
    }

    private func call(id: JSONValue, params: [String: JSONValue], modern: Bool) throws(MCPError) -> MCPAnswer {
        guard let name = params["name"]?.stringValue else { throw .invalidParams("params.name must be the name of a tool") }
        let tools = self.tools
        guard let tool = tools.tool(named: name) else {
            source?.refreshSoon()
            throw .invalidParams("unknown tool '\(name)'; this server has: \(tools.tools.map(\.name).joined(separator: ", "))")
        }
        let arguments: [String: JSONValue]
        switch params["arguments"] {
        case nil, .null?: arguments = [:]
        case .object(let object)?: arguments = object
        case let other?:
            return .reply(success(MCPToolResult.failure("arguments must be an object, got \(other.typeName)", modern: modern), id: id), status: 200)
        }
        // Invalid arguments are the tool's answer, so the model can read it and try again.
        if let violation = JSONSchemaCheck.violation(of: .object(arguments), against: tool.inputSchema, at: "arguments") {
            return .reply(success(MCPToolResult.failure("invalid arguments: \(violation)", modern: modern), id: id), status: 200)
        }
        let token = params["_meta"]?["progressToken"]
        let progressToken: JSONValue? =
            switch token {
            case .string?, .integer?: token
            default: nil
            }
        return .call(MCPToolCall(id: id, tool: tool, input: tool.jobInput(arguments: arguments), progressToken: progressToken, modern: modern))
    }

    private var capabilities: JSONValue { ["tools": ["listChanged": false]] }

    private var serverInfo: JSONValue { ["name": .string(tools.serverName), "version": .string(serverVersion)] }

    private func success(_ result: JSONValue, id: JSONValue) -> JSONValue {
        ["jsonrpc": "2.0", "id": id, "result": result]
    }

    private func reply(_ error: MCPError, id: JSONValue) -> MCPAnswer {
        .reply(error.message(id: id), status: error.httpStatus)
    }

    /// Header values that are not plain ASCII arrive as `=?base64?…?=` (the transport's rule).
    static func decodedHeader(_ value: String) -> String {
        guard value.hasPrefix("=?base64?"), value.hasSuffix("?="), value.count >= 11 else { return value }
        let payload = value.dropFirst(9).dropLast(2)
        return Data(base64Encoded: String(payload)).flatMap { String(validating: $0, as: UTF8.self) } ?? value
    }
}

extension JSONValue {
    /// A string or a 64-bit integer: what `MCPMessage.classify` accepts as a request's id.
    var isRequestID: Bool {
        switch self {
        case .string, .integer: return true
        default: return false
        }
    }
}

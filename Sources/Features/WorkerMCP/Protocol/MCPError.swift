import WorkerJSON

/// A JSON-RPC error answer, with the HTTP status the streamable HTTP transport sends it with.
struct MCPError: Error, Equatable {
    let code: Int
    let message: String
    let data: JSONValue?

    static func parse(_ message: String) -> MCPError { MCPError(code: -32700, message: message, data: nil) }
    static func invalidRequest(_ message: String) -> MCPError { MCPError(code: -32600, message: message, data: nil) }
    static func methodNotFound(_ method: String) -> MCPError {
        MCPError(code: -32601, message: "method '\(method)' is not served here (tools only)", data: nil)
    }
    static func invalidParams(_ message: String) -> MCPError { MCPError(code: -32602, message: message, data: nil) }
    static func internalError(_ message: String) -> MCPError { MCPError(code: -32603, message: message, data: nil) }
    static func headerMismatch(_ message: String) -> MCPError { MCPError(code: -32020, message: message, data: nil) }
    static func unsupportedVersion(_ requested: String) -> MCPError {
        MCPError(
            code: -32022, message: "protocol version '\(requested)' is not supported; use one of \(MCPVersion.all.joined(separator: ", "))",
            data: ["supported": .array(MCPVersion.modern.map(JSONValue.string)), "requested": .string(requested)])
    }

    /// The HTTP status of this error (the table the official SDKs share): 400 for what the client
    /// sent wrong, 404 for an unknown method, else 200 with the error in the body.
    var httpStatus: Int {
        switch code {
        case -32700, -32600, -32602, -32020, -32021, -32022: return 400
        case -32601: return 404
        default: return 200
        }
    }

    /// The whole JSON-RPC message answering request `id` (null when the id is unknown).
    func message(id: JSONValue) -> JSONValue {
        var error: [String: JSONValue] = ["code": .integer(Int64(code)), "message": .string(message)]
        if let data { error["data"] = data }
        return ["jsonrpc": "2.0", "id": id, "error": .object(error)]
    }
}

import WorkerJSON

/// One message from a client, sorted by JSON-RPC's rules: a request has an `id`, a notification
/// has none, and a response (the client answering us; we never ask) has `result` or `error`.
enum MCPMessage: Equatable {
    case request(id: JSONValue, method: String, params: [String: JSONValue])
    case notification(method: String, params: [String: JSONValue])
    case response

    /// Classifies a parsed body; a batch or a malformed envelope is an error to answer with id null.
    static func classify(_ value: JSONValue) throws(MCPError) -> MCPMessage {
        guard case .object(let fields) = value else {
            if case .array = value { throw .invalidRequest("batches are not accepted: send one JSON-RPC message per request") }
            throw .invalidRequest("the body must be a JSON-RPC message object, got \(value.typeName)")
        }
        guard fields["jsonrpc"] == "2.0" else { throw .invalidRequest("\"jsonrpc\" must be \"2.0\"") }
        if fields["method"] == nil, fields["result"] != nil || fields["error"] != nil { return .response }
        guard let method = fields["method"]?.stringValue, !method.isEmpty else {
            throw .invalidRequest("\"method\" must be a non-empty string")
        }
        let params: [String: JSONValue]
        switch fields["params"] {
        case nil, .null?: params = [:]
        case .object(let object)?: params = object
        default: throw .invalidRequest("\"params\" must be an object")
        }
        guard let id = fields["id"] else { return .notification(method: method, params: params) }
        switch id {
        case .string, .integer: return .request(id: id, method: method, params: params)
        // A number that is not a 64-bit integer (1.5, 1e3, 123456789012345678901234567890) could not
        // be echoed exactly: the answer would carry a float the client never sent.
        default: throw .invalidRequest("\"id\" must be a string or an integer within 64 bits, got \((try? id.jsonString()) ?? id.typeName)")
        }
    }
}

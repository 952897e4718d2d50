import WorkerJSON

/// A validated context7 job. Both our action names and the ones Context7's own MCP server uses
/// are accepted, so agents configured for either work unchanged.
enum Context7Request: Equatable {
    /// `resolve_library` `{library_name, query?}`, or `resolve-library-id` `{libraryName, query}`
    /// (`asText`: answered as that server's text block).
    case resolveLibrary(name: String, query: String, asText: Bool)
    /// `get_docs` `{library_id, query? | topic?, tokens?}`, or `query-docs` `{libraryId, query}`.
    case getDocs(libraryID: String, query: String, tokens: Int?, asText: Bool)

    static let actions = ["resolve_library", "get_docs", "resolve-library-id", "query-docs"]
    /// The fields each action takes. Any other is refused, naming it: the response cache keys
    /// on the whole input, so a field the handler ignored (a `nonce`) would make every call a miss.
    static let fieldsByAction: [String: [String]] = [
        "resolve_library": ["library_name", "query"],
        "resolve-library-id": ["libraryName", "query"],
        "get_docs": ["library_id", "query", "topic", "tokens"],
        "query-docs": ["libraryId", "query"],
    ]
    /// Context7's limit on `libraryName` and `query`.
    static let maxTextLength = 500
    static let maxTokens = 1_000_000

    static func parse(_ input: JSONValue) throws(Context7Error) -> Context7Request {
        guard case .object(let fields) = input else {
            throw .input("input must be an object with an \"action\", got \(input.typeName)")
        }
        guard let action = fields["action"]?.stringValue else {
            throw .input("input.action is missing; use one of \(actions.joined(separator: ", "))")
        }
        guard let known = fieldsByAction[action] else {
            throw .input("unknown action '\(action)'; use one of \(actions.joined(separator: ", "))")
        }
        if let unknown = fields.keys.sorted().first(where: { $0 != "action" && !known.contains($0) }) {
            throw .input("input.\(unknown) is not a field of \(action), which takes \(known.joined(separator: ", ")); leave it out")
        }
        switch action {
        case "resolve_library", "resolve-library-id":
            let native = action == "resolve_library"
            let nameField = native ? "library_name" : "libraryName"
            let name = try text(fields, nameField, required: true)!
            let query = try text(fields, "query", required: !native) ?? name
            return .resolveLibrary(name: name, query: query, asText: !native)
        case "get_docs", "query-docs":
            let native = action == "get_docs"
            let idField = native ? "library_id" : "libraryId"
            let id = try text(fields, idField, required: true)!
            guard isLibraryID(id) else {
                throw .input("input.\(idField) '\(id)' is not a Context7 library id: expected /owner/repo, /owner/repo/version or /owner/repo@version (resolve_library finds it)")
            }
            var query = try text(fields, "query", required: !native)
            if native, query == nil { query = try text(fields, "topic", required: false) }
            guard let query else { throw .input("input.query is missing: say what you want to know about \(id)") }
            var tokens: Int?
            if native, let raw = fields["tokens"], raw != .null {
                guard let number = raw.intValue, number > 0, number <= maxTokens else {
                    throw .input("input.tokens must be a whole number from 1 to \(maxTokens), got \(raw)")
                }
                tokens = Int(number)
            }
            return .getDocs(libraryID: id, query: query, tokens: tokens, asText: !native)
        default:
            throw .input("unknown action '\(action)'; use one of \(actions.joined(separator: ", "))")
        }
    }

    /// `^/[^/]+/[^/]+([/@][^/]+)?$`, Context7's pattern for library ids: two or three non-empty
    /// parts after a leading slash (`[^/]+` takes an `@version` in its stride).
    static func isLibraryID(_ id: String) -> Bool {
        guard id.hasPrefix("/") else { return false }
        let parts = id.dropFirst().split(separator: "/", omittingEmptySubsequences: false)
        return (parts.count == 2 || parts.count == 3) && parts.allSatisfy { !$0.isEmpty }
    }

    private static func text(_ fields: [String: JSONValue], _ name: String, required: Bool) throws(Context7Error) -> String? {
        guard let value = fields[name], value != .null else {
            if required { throw .input("input.\(name) is missing") }
            return nil
        }
        guard let text = value.stringValue else { throw .input("input.\(name) must be a string, got \(value.typeName)") }
        let trimmed = text.trimmingWhitespace
        guard !trimmed.isEmpty else { throw .input("input.\(name) is empty") }
        guard trimmed.count <= maxTextLength else {
            throw .input("input.\(name) is \(trimmed.count) characters; Context7 takes at most \(maxTextLength)")
        }
        return trimmed
    }
}

extension String {
    var trimmingWhitespace: String {
        let isSpace: (Character) -> Bool = { $0.isWhitespace }
        return String(self.drop(while: isSpace).reversed().drop(while: isSpace).reversed())
    }
}

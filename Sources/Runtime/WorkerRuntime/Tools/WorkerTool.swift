import WorkerJSON

/// A tool an AI agent can call: one action of the handler, described once. The same declaration
/// gives MCP's `tools/list`, checks a call's arguments before a job is made, and is printed by
/// `--list-tools` for the docs. A call runs as a job whose input is the arguments, plus
/// `"action": action` when the tool names one.
///
/// ```swift
/// WorkerTool(
///     name: "retrieve", description: "Finds the stored texts nearest to a query.", action: "retrieve",
///     inputSchema: ["type": "object", "properties": ["query": ["type": "string"]], "required": ["query"]],
///     annotations: .init(readOnly: true))
/// ```
public struct WorkerTool: Sendable, Equatable {
    /// 1–128 of `A–Z a–z 0–9 _ - .` (MCP's rule for tool names).
    public var name: String
    public var title: String?
    public var description: String
    /// The value of the job input's `action` key; nil passes the arguments as the input unchanged.
    public var action: String?
    /// A JSON Schema object for the arguments.
    public var inputSchema: JSONValue
    /// A JSON Schema object for the job's output, when it is always one shape.
    public var outputSchema: JSONValue?
    public var annotations: Annotations
    /// OAuth scopes a call needs when MCP authorization is on (docs/mcp.md), beside
    /// `MCP_AUTH_SCOPES`; `MCP_TOOL_SCOPES` replaces them per deployment. Empty: none.
    public var scopes: [String]
    /// For tools that forward calls elsewhere (the gateway's): the job input is
    /// `{forwardKey: {"name": action, "arguments": arguments}}`, since the arguments may hold any
    /// key, and the job's output is the `tools/call` result itself, passed on as it is.
    package var forwardKey: String?

    /// Hints for clients (MCP's tool annotations); nil leaves one unsaid.
    public struct Annotations: Sendable, Equatable {
        public var readOnly: Bool?
        public var destructive: Bool?
        public var idempotent: Bool?
        public var openWorld: Bool?

        public init(readOnly: Bool? = nil, destructive: Bool? = nil, idempotent: Bool? = nil, openWorld: Bool? = nil) {
            self.readOnly = readOnly
            self.destructive = destructive
            self.idempotent = idempotent
            self.openWorld = openWorld
        }
    }

    public init(
        name: String, title: String? = nil, description: String, action: String? = nil,
        inputSchema: JSONValue = ["type": "object"], outputSchema: JSONValue? = nil, annotations: Annotations = Annotations(),
        scopes: [String] = []
    ) {
        self.name = name
        self.title = title
        self.description = description
        self.action = action
        self.inputSchema = inputSchema
        self.outputSchema = outputSchema
        self.annotations = annotations
        self.scopes = scopes
    }

    /// The job input for a call with these arguments.
    package func jobInput(arguments: [String: JSONValue]) -> JSONValue {
        if let forwardKey { return [forwardKey: ["name": .string(action ?? name), "arguments": .object(arguments)]] }
        guard let action else { return .object(arguments) }
        var input = arguments
        input["action"] = .string(action)
        return .object(input)
    }

    /// The tool as MCP's `tools/list` shows it.
    package var listing: JSONValue {
        var tool: [String: JSONValue] = ["name": .string(name), "description": .string(description), "inputSchema": inputSchema]
        if let title { tool["title"] = .string(title) }
        if let outputSchema { tool["outputSchema"] = outputSchema }
        var hints: [String: JSONValue] = [:]
        if let title { hints["title"] = .string(title) }
        if let value = annotations.readOnly { hints["readOnlyHint"] = .bool(value) }
        if let value = annotations.destructive { hints["destructiveHint"] = .bool(value) }
        if let value = annotations.idempotent { hints["idempotentHint"] = .bool(value) }
        if let value = annotations.openWorld { hints["openWorldHint"] = .bool(value) }
        if !hints.isEmpty { tool["annotations"] = .object(hints) }
        return .object(tool)
    }

    /// Whether `name` follows MCP's rule for tool names.
    static func isValidName(_ name: String) -> Bool {
        (1...128).contains(name.utf8.count)
            && name.utf8.allSatisfy { byte in
                let lower = byte | 0x20
                return (lower >= 0x61 && lower <= 0x7A) || (byte >= 0x30 && byte <= 0x39) || byte == 0x5F || byte == 0x2D || byte == 0x2E
            }
    }
}

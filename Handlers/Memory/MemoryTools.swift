import WorkerJSON
import WorkerRuntime

/// The memory handler's actions as tools for agents (MCP), each described once: the schemas are
/// checked before a job is made, and `memory --list-tools` prints them for the docs.
enum MemoryTools {
    static let instructions =
        "Long-term memory: store texts under keys (optionally with metadata) in a namespace, and retrieve the stored "
        + "texts nearest in meaning to a query. Use one namespace per user or topic."

    /// What a tool that changes memories needs under MCP authorization (docs/mcp.md); reading
    /// needs only `MCP_AUTH_SCOPES`. `MCP_TOOL_SCOPES` replaces it per deployment.
    static let writeScopes = ["memory:write"]

    static let all: [WorkerTool] = [
        WorkerTool(
            name: "store", title: "Store a memory",
            description: "Stores one text under a key in a namespace (replacing what the key held). Returns the stored key.",
            action: "store",
            inputSchema: object(["namespace": namespace, "key": key, "content": content, "metadata": metadata], required: ["key", "content"]),
            outputSchema: stored, annotations: .init(readOnly: false, destructive: false, idempotent: true, openWorld: false),
            scopes: writeScopes),
        WorkerTool(
            name: "store_batch", title: "Store several memories",
            description: "Stores up to \(MemoryRequest.maxBatch) texts at once, each under its own key, in one namespace.",
            action: "store_batch",
            inputSchema: object(
                [
                    "namespace": namespace,
                    "items": [
                        "type": "array", "minItems": 1, "maxItems": .integer(Int64(MemoryRequest.maxBatch)),
                        "items": object(["key": key, "content": content, "metadata": metadata], required: ["key", "content"]),
                    ],
                ], required: ["items"]),
            outputSchema: stored, annotations: .init(readOnly: false, destructive: false, idempotent: true, openWorld: false),
            scopes: writeScopes),
        WorkerTool(
            name: "retrieve", title: "Find memories",
            description: "Finds the k stored texts nearest in meaning to a query, nearest first, optionally only those whose "
                + "metadata equals every value in filter.",
            action: "retrieve",
            inputSchema: object(
                [
                    "namespace": namespace,
                    "query": ["type": "string", "description": "What to look for, in words."],
                    "k": [
                        "type": "integer", "minimum": 1, "maximum": .integer(Int64(MemoryRequest.maxK)),
                        "description": "How many to return (default 5).",
                    ],
                    "filter": [
                        "type": "object", "description": "Metadata values the results must have (equality).",
                        "additionalProperties": ["type": ["string", "number", "boolean", "null"]],
                    ],
                ], required: ["query"]),
            outputSchema: object(["memories": ["type": "array", "items": ["type": "object"]]], required: ["memories"], closed: false),
            annotations: .init(readOnly: true, openWorld: false)),
        WorkerTool(
            name: "get", title: "Get a memory", description: "Returns the memory stored under a key, if any.", action: "get",
            inputSchema: object(["namespace": namespace, "key": key], required: ["key"]),
            outputSchema: object(["found": ["type": "boolean"], "memory": ["type": ["object", "null"]]], required: ["found"], closed: false),
            annotations: .init(readOnly: true, openWorld: false)),
        WorkerTool(
            name: "delete", title: "Delete a memory", description: "Deletes the memory stored under a key.", action: "delete",
            inputSchema: object(["namespace": namespace, "key": key], required: ["key"]),
            outputSchema: object(["deleted": ["type": "boolean"]], required: ["deleted"], closed: false),
            annotations: .init(readOnly: false, destructive: true, idempotent: true, openWorld: false), scopes: writeScopes),
        WorkerTool(
            name: "stats", title: "Namespace statistics",
            description: "How many memories a namespace holds, their dimension and embedder, and its size on disk.", action: "stats",
            inputSchema: object(["namespace": namespace], required: []),
            outputSchema: object(["namespace": ["type": "string"], "count": ["type": "integer"]], required: ["namespace", "count"], closed: false),
            annotations: .init(readOnly: true, openWorld: false)),
        embed,
    ]

    static let embed = WorkerTool(
        name: "embed", title: "Embed texts",
        description: "Turns up to \(MemoryRequest.maxEmbedTexts) texts into the vectors this memory uses (its embedding model), "
            + "for comparing texts or storing vectors elsewhere.",
        action: "embed",
        inputSchema: object(
            ["texts": ["type": "array", "minItems": 1, "maxItems": .integer(Int64(MemoryRequest.maxEmbedTexts)), "items": ["type": "string"]]],
            required: ["texts"]),
        outputSchema: object(
            ["vectors": ["type": "array", "items": ["type": "array", "items": ["type": "number"]]], "model": ["type": "string"],
             "dimension": ["type": "integer"]], required: ["vectors", "model", "dimension"], closed: false),
        annotations: .init(readOnly: true, openWorld: false))

    private static let namespace: JSONValue = [
        "type": "string", "minLength": 1, "maxLength": .integer(Int64(MemoryRequest.maxNamespaceBytes)),
        "description": "Where the memory lives (default \"default\"): letters, digits, '-', '_' and '.'.",
    ]
    private static let key: JSONValue = ["type": "string", "minLength": 1, "description": "The memory's unique name in its namespace."]
    private static let content: JSONValue = ["type": "string", "description": "The text to remember."]
    private static let metadata: JSONValue = [
        "type": "object", "description": "Values kept with the text; scalar ones can be used as retrieve filters.",
    ]
    private static let stored = object(
        ["stored": ["type": "integer"], "keys": ["type": "array", "items": ["type": "string"]], "namespace": ["type": "string"]],
        required: ["stored", "keys", "namespace"], closed: false)

    /// An object schema; `closed` refuses arguments it does not name, so a misspelt one is reported.
    private static func object(_ properties: [String: JSONValue], required: [String], closed: Bool = true) -> JSONValue {
        var schema: [String: JSONValue] = ["type": "object", "properties": .object(properties)]
        if !required.isEmpty { schema["required"] = .array(required.map(JSONValue.string)) }
        if closed { schema["additionalProperties"] = false }
        return .object(schema)
    }
}

import WorkerJSON
import WorkerRuntime

/// The context7 handler's actions as tools for agents (MCP). `resolve-library-id` and
/// `query-docs` are the names and arguments of Context7's own MCP server, answered as its text.
enum Context7Tools {
    static let instructions =
        "Current documentation and code examples for software libraries, from Context7. First find a library's id with "
        + "resolve_library (or resolve-library-id), then ask get_docs (or query-docs) a question about it."

    private static let lookup = WorkerTool.Annotations(readOnly: true, destructive: false, idempotent: true, openWorld: true)

    static let all: [WorkerTool] = [
        WorkerTool(
            name: "resolve_library", title: "Find a library",
            description: "Finds libraries matching a name and returns their Context7 ids with title, description, snippet count, "
                + "trust and benchmark scores and versions, best match first.",
            action: "resolve_library",
            inputSchema: object(
                [
                    "library_name": ["type": "string", "minLength": 1, "maxLength": 500, "description": "The library's name, such as react or fastapi."],
                    "query": ["type": "string", "minLength": 1, "maxLength": 500, "description": "What you want to do with it (ranks the matches)."],
                ], required: ["library_name"], closed: true),
            outputSchema: object(["libraries": ["type": "array", "items": ["type": "object"]]], required: ["libraries"]),
            annotations: lookup),
        WorkerTool(
            name: "get_docs", title: "Read library documentation",
            description: "Returns up-to-date documentation snippets of a library (by its Context7 id, such as /vercel/next.js) "
                + "that answer a question; tokens caps the length at snippet boundaries.",
            action: "get_docs",
            inputSchema: object(
                [
                    "library_id": ["type": "string", "pattern": "^/[^/]+/[^/]+([/@][^/]+)?$", "description": "A Context7 library id from resolve_library."],
                    "query": ["type": "string", "minLength": 1, "maxLength": 500, "description": "The question to answer."],
                    "topic": ["type": "string", "minLength": 1, "maxLength": 500, "description": "Older name for query."],
                    "tokens": ["type": "integer", "minimum": 1, "maximum": 1_000_000, "description": "About how many tokens to return at most."],
                ], required: ["library_id"], closed: true),
            outputSchema: object(
                ["library_id": ["type": "string"], "content": ["type": "string"], "found": ["type": "boolean"]],
                required: ["library_id", "content"]),
            annotations: lookup),
        WorkerTool(
            name: "resolve-library-id", title: "Resolve Context7 Library ID",
            description: "Resolves a package or product name to a Context7-compatible library ID and returns matching libraries. "
                + "Call it before query-docs unless you already have an id in the /org/project form.",
            action: "resolve-library-id",
            inputSchema: object(
                [
                    "query": ["type": "string", "description": "The question or task you need help with."],
                    "libraryName": ["type": "string", "description": "The library name to search for."],
                ], required: ["query", "libraryName"], closed: true),
            annotations: lookup),
        WorkerTool(
            name: "query-docs", title: "Query Documentation",
            description: "Retrieves up-to-date documentation and code examples from Context7 for a library id "
                + "(from resolve-library-id, in the /org/project form).",
            action: "query-docs",
            inputSchema: object(
                [
                    "libraryId": ["type": "string", "description": "An exact Context7-compatible library ID, such as /mongodb/docs."],
                    "query": ["type": "string", "description": "The question or task you need help with."],
                ], required: ["libraryId", "query"], closed: true),
            annotations: lookup),
    ]

    /// An object schema; `closed` (the tools' inputs) refuses arguments it does not name, as the
    /// handler does (`Context7Request.fieldsByAction`), so a misspelt one is reported.
    private static func object(_ properties: [String: JSONValue], required: [String], closed: Bool = false) -> JSONValue {
        var schema: [String: JSONValue] = ["type": "object", "properties": .object(properties), "required": .array(required.map { .string($0) })]
        if closed { schema["additionalProperties"] = false }
        return .object(schema)
    }
}

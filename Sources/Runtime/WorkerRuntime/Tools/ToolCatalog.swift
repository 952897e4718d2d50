import WorkerJSON

/// The tools a worker offers, checked once: the handler's declarations, or, when it declares none,
/// one tool named after the handler that takes its job input as an object.
package struct ToolCatalog: Sendable {
    package let serverName: String
    package let instructions: String?
    package let tools: [WorkerTool]
    private let byName: [String: Int]

    package init(options: WorkerOptions, executable: String) throws(WorkerRuntimeError) {
        serverName = options.name ?? Self.defaultName(executable: executable)
        instructions = options.instructions
        var tools = options.tools
        if tools.isEmpty {
            tools = [
                WorkerTool(
                    name: serverName, description: "Runs the \(serverName) handler: the arguments are its job input; "
                        + "the result is its output.",
                    inputSchema: ["type": "object"])
            ]
        }
        var byName: [String: Int] = [:]
        for (index, tool) in tools.enumerated() {
            guard WorkerTool.isValidName(tool.name) else {
                throw .invalidTool("tool name '\(tool.name)' must be 1 to 128 of A-Z a-z 0-9 _ - .")
            }
            guard tool.inputSchema["type"]?.stringValue == "object" else {
                throw .invalidTool("tool '\(tool.name)': inputSchema must be a JSON Schema with \"type\": \"object\"")
            }
            if let output = tool.outputSchema, output["type"]?.stringValue != "object" {
                throw .invalidTool("tool '\(tool.name)': outputSchema must be a JSON Schema with \"type\": \"object\"")
            }
            guard byName.updateValue(index, forKey: tool.name) == nil else {
                throw .invalidTool("tool name '\(tool.name)' is declared twice")
            }
        }
        self.tools = tools
        self.byName = byName
    }

    /// A catalog of tools made while the worker runs (`ToolSource`): invalid and repeated names
    /// are left out, with the reason in `skipped`.
    package init(serverName: String, instructions: String?, tools candidates: [WorkerTool]) {
        self.serverName = serverName
        self.instructions = instructions
        var kept: [WorkerTool] = []
        var byName: [String: Int] = [:]
        var skipped: [String] = []
        for tool in candidates {
            guard WorkerTool.isValidName(tool.name), tool.inputSchema["type"]?.stringValue == "object" else {
                skipped.append("\(tool.name): its name or input schema is not valid MCP")
                continue
            }
            guard byName[tool.name] == nil else {
                skipped.append("\(tool.name): named twice")
                continue
            }
            byName[tool.name] = kept.count
            kept.append(tool)
        }
        self.tools = kept
        self.byName = byName
        self.skipped = skipped
    }

    /// Tools a made-while-running catalog left out, and why.
    package private(set) var skipped: [String] = []

    /// The default tool of a worker named `name` (when declarations are unknown or invalid).
    package init(name: String) {
        serverName = name
        instructions = nil
        tools = [WorkerTool(name: name, description: "Runs the \(name) handler.")]
        byName = [name: 0]
    }

    package func tool(named name: String) -> WorkerTool? {
        byName[name].map { tools[$0] }
    }

    /// `tools/list`'s `tools`, in declaration order.
    package var listing: JSONValue { .array(tools.map(\.listing)) }

    /// The executable's file name, made a valid tool name (`my worker` → `my_worker`).
    static func defaultName(executable: String) -> String {
        let base = executable.split(separator: "/").last.map(String.init) ?? "worker"
        let cleaned = String(
            base.map { character -> Character in
                WorkerTool.isValidName(String(character)) ? character : "_"
            }.prefix(128))
        return cleaned.isEmpty ? "worker" : cleaned
    }
}

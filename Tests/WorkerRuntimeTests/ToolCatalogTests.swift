import Testing
import TestSupport
import WorkerJSON

@testable import WorkerRuntime

@Suite("Tool declarations", .defaultPass)
struct ToolCatalogTests {
    @Test("a worker that declares nothing offers one tool named after it, taking its job input")
    func defaultTool() throws {
        let catalog = try ToolCatalog(options: WorkerOptions(), executable: "/usr/local/bin/echo")
        #expect(catalog.serverName == "echo")
        #expect(catalog.tools.map(\.name) == ["echo"])
        #expect(catalog.tool(named: "echo")?.jobInput(arguments: ["a": 1]) == ["a": 1])
        #expect(ToolCatalog.defaultName(executable: "my worker!") == "my_worker_")
    }

    @Test("declared tools keep their order, add their action to the job input and list their hints")
    func declared() throws {
        let tool = WorkerTool(
            name: "get", title: "Get", description: "Gets.", action: "get", outputSchema: ["type": "object"],
            annotations: .init(readOnly: true, openWorld: false))
        let catalog = try ToolCatalog(options: WorkerOptions(name: "mem", tools: [tool, WorkerTool(name: "b", description: "B.")]), executable: "x")
        #expect(catalog.tools.map(\.name) == ["get", "b"])
        #expect(catalog.tool(named: "get")?.jobInput(arguments: ["key": "k"]) == ["key": "k", "action": "get"])
        let listed = catalog.listing[0]
        #expect(listed?["annotations"] == ["title": "Get", "readOnlyHint": true, "openWorldHint": false])
        #expect(listed?["outputSchema"] == ["type": "object"])
    }

    @Test("bad declarations are start-up errors that name the tool")
    func invalid() {
        let cases: [[WorkerTool]] = [
            [WorkerTool(name: "has space", description: "x")], [WorkerTool(name: "", description: "x")],
            [WorkerTool(name: String(repeating: "a", count: 129), description: "x")],
            [WorkerTool(name: "a", description: "x", inputSchema: ["type": "string"])],
            [WorkerTool(name: "a", description: "x", outputSchema: ["type": "array"])],
            [WorkerTool(name: "a", description: "x"), WorkerTool(name: "a", description: "y")],
        ]
        for tools in cases {
            #expect(throws: WorkerRuntimeError.self) { try ToolCatalog(options: WorkerOptions(tools: tools), executable: "w") }
        }
        #expect(
            throws: WorkerRuntimeError.self,
            performing: { try WorkerRuntime.resolve(arguments: [], environment: [:], options: WorkerOptions(tools: cases[0])) })
    }

    @Test("--list-tools is the core's")
    func listTools() throws {
        #expect(try WorkerRuntime.resolve(arguments: ["--list-tools"], environment: [:]).listTools)
    }
}

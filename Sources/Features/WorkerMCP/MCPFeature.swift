import WorkerEndpointServer
import WorkerRuntime

extension WorkerFeature {
    /// MCP (the Model Context Protocol) for the worker's tools (`WorkerOptions.tools`): streamable
    /// HTTP at `/mcp` on the endpoint server (`--local` and load-balancing mode; stateless, so it
    /// works behind RunPod's load balancer) and `--mcp` over standard input and output. Each tool
    /// call runs as a job, as `/run` would. Use with `.endpointServer()`.
    public static func mcp() -> WorkerFeature {
        let inFlight = MCPInFlight()
        return WorkerFeature(
            name: "mcp",
            serve: { mode, context in
                guard mode == .mcpStdio else { return nil }
                return MCPStdioService(context: context)
            },
            contributions: [MCPHTTPRoute.group(inFlight: inFlight)])
    }
}

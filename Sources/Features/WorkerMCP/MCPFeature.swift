import MCPAuth
import WorkerEndpointServer
import WorkerRuntime

extension WorkerFeature {
    /// MCP (the Model Context Protocol) for the worker's tools (`WorkerOptions.tools`): streamable
    /// HTTP at `/mcp` on the endpoint server (`--local` and load-balancing mode; stateless, so it
    /// works behind RunPod's load balancer) and `--mcp` over standard input and output. Each tool
    /// call runs as a job, as `/run` would. With `MCP_AUTH_ISSUER`, `/mcp` is an OAuth 2.1
    /// protected resource (docs/mcp.md, "Authorization"). Use with `.endpointServer()`.
    public static func mcp() -> WorkerFeature {
        let inFlight = MCPInFlight()
        return WorkerFeature(
            name: "mcp", flags: [stdioFlag],
            configure: { setup throws(ConfigurationError) in
                let tools = (try? ToolCatalog(options: setup.options, executable: CommandLine.arguments.first ?? "worker"))?.tools.map(\.name) ?? []
                let authorization = try MCPAuthSettings.read(setup.environment, tools: tools)
                guard setup.flags.isSet(stdioFlag.name) else { return FeatureConfiguration(settings: authorization) }
                // Standard output is the protocol's: no other mode can share the process.
                return FeatureConfiguration(settings: authorization, mode: ModeClaim(.mcpStdio, strength: .exclusiveFlag))
            },
            serve: { mode, context in
                guard mode == .feature(.mcpStdio) else { return nil }
                return MCPStdioService(context: context)
            },
            contributions: [MCPHTTPRoute.group(inFlight: inFlight)])
    }
}

extension FeatureMode {
    /// `--mcp`: MCP over standard input and output, for an agent that launched the worker.
    package static let mcpStdio = FeatureMode(name: "mcp-stdio")
}

private let stdioFlag = FeatureFlag(
    ["--mcp"], help: "Speak MCP (the Model Context Protocol) over standard input and output, for desktop agents; logs go to standard error.")

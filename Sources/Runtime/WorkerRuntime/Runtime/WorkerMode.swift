/// What a worker process does, decided from the environment and flags alone (docs/protocol.md, section 1.1).
package enum WorkerMode: Sendable, Equatable {
    /// The production queue worker against the platform's worker API.
    case queue(WorkerConfiguration.PlatformEndpoints)
    /// One job from `--test-input` (or `./test_input.json` when nil), then exit.
    case oneShot(testInput: String?)
    /// The endpoint API over HTTP: `--local`, or a load-balancing worker (`PORT`).
    case server(ServerConfiguration)
    /// `--mcp`: MCP over standard input and output, for an agent that launched the worker.
    case mcpStdio

    /// Whether the endpoint API is served over HTTP (`--local`, load balancing).
    package var isServer: Bool {
        if case .server = self { return true }
        return false
    }

    /// `--test-input` wins; then `--mcp`; then `--local`; then the platform's queue variables;
    /// then `PORT` (load balancing); else a one-shot run of `./test_input.json`.
    package static func resolve(arguments: WorkerArguments, configuration: WorkerConfiguration) -> WorkerMode {
        if let input = arguments.testInput { return .oneShot(testInput: input) }
        if arguments.mcp { return .mcpStdio }
        if arguments.local {
            return .server(
                ServerConfiguration(
                    kind: .local, host: arguments.host ?? "127.0.0.1", port: arguments.port ?? 8000,
                    healthPath: configuration.healthCheckPath, apiKey: configuration.serverAPIKey,
                    allowUnauthenticated: arguments.allowUnauthenticated))
        }
        if let platform = configuration.platform { return .queue(platform) }
        if let port = configuration.port {
            return .server(
                ServerConfiguration(
                    kind: .loadBalancing, host: arguments.host ?? "0.0.0.0", port: port, healthPort: configuration.healthPort,
                    healthPath: configuration.healthCheckPath, apiKey: configuration.serverAPIKey,
                    allowUnauthenticated: true))
        }
        return .oneShot(testInput: nil)
    }
}

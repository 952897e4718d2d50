/// What a worker process does, decided from the environment and flags alone (section 1.1).
public enum WorkerMode: Sendable, Equatable {
    /// The production queue worker against the platform's worker API.
    case queue(WorkerConfiguration.PlatformEndpoints)
    /// One job from `--test-input` (or `./test_input.json` when nil), then exit.
    case oneShot(testInput: String?)
    /// The endpoint API over HTTP: `--local`, or a load-balancing worker (`PORT`).
    case server(ServerConfiguration)

    /// `--test-input` wins; then `--local`; then the platform's queue variables; then `PORT`
    /// (load balancing); else a one-shot run of `./test_input.json`.
    public static func resolve(arguments: WorkerArguments, configuration: WorkerConfiguration) -> WorkerMode {
        if let input = arguments.testInput { return .oneShot(testInput: input) }
        if arguments.local {
            var server = ServerConfiguration(
                kind: .local, host: arguments.host ?? "127.0.0.1", port: arguments.port ?? 8000,
                healthPath: configuration.healthCheckPath, apiKey: configuration.serverAPIKey,
                allowUnauthenticated: arguments.allowUnauthenticated)
            server.limits.retention = configuration.resultRetention
            return .server(server)
        }
        if let platform = configuration.platform { return .queue(platform) }
        if let port = configuration.port {
            var server = ServerConfiguration(
                kind: .loadBalancing, host: arguments.host ?? "0.0.0.0", port: port, healthPort: configuration.healthPort,
                healthPath: configuration.healthCheckPath, apiKey: configuration.serverAPIKey,
                allowUnauthenticated: true)
            server.limits.retention = configuration.resultRetention
            return .server(server)
        }
        return .oneShot(testInput: nil)
    }
}

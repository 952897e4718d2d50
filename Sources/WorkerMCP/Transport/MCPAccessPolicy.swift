import WorkerEndpointServer
import WorkerRuntime

/// `/mcp`'s Host and Origin rules, which are the endpoint server's for every route
/// (`HostOriginPolicy`, applied by its request guard before any route runs, `/mcp` included): kept
/// as MCP's name for them, so MCP's tests state the rules MCP clients meet.
struct MCPAccessPolicy: Sendable, Equatable {
    let policy: HostOriginPolicy

    struct Denial: Equatable {
        let status: Int
        let message: String
    }

    init(configuration: WorkerConfiguration, server: ServerConfiguration?) {
        self.policy = HostOriginPolicy(configuration: configuration, server: server)
    }

    func check(host: String?, origin: String?) -> Denial? {
        policy.check(host: host, origin: origin).map { Denial(status: $0.status, message: $0.message) }
    }
}

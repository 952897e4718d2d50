import WorkerRuntime

/// Which `Host` and `Origin` headers `/mcp` answers. Host checks stop DNS rebinding (a web page
/// whose name suddenly resolves to 127.0.0.1) from reaching a server that needs no key; Origin
/// checks stop any browser page of a foreign site, key or not.
struct MCPAccessPolicy: Sendable, Equatable {
    /// Host patterns: `name`, `*.suffix` or `*`.
    let hosts: [String]
    let origins: [String]

    enum Denial: Equatable {
        /// 403: a browser page of another site.
        case foreignOrigin(String)
        /// 421: a name this server was not told it answers to.
        case foreignHost(String)

        var status: Int {
            switch self {
            case .foreignOrigin: return 403
            case .foreignHost: return 421
            }
        }

        var message: String {
            switch self {
            case .foreignOrigin(let origin):
                return "Origin '\(origin)' is not allowed to call this MCP server; add it to MCP_ALLOWED_ORIGINS to allow it"
            case .foreignHost(let host):
                return "Host '\(host)' is not a name this MCP server answers to; add it to MCP_ALLOWED_HOSTS to allow it"
            }
        }
    }

    init(hosts: [String], origins: [String]) {
        self.hosts = hosts
        self.origins = origins
    }

    /// Loopback names, the address served on, RunPod's names for the endpoint, and
    /// `MCP_ALLOWED_HOSTS`. With an API key and no hosts configured, any Host is fine (a page
    /// rebinding a name cannot supply the key).
    init(configuration: WorkerConfiguration, server: ServerConfiguration?) {
        var hosts = ["localhost", "127.0.0.1", "::1"]
        if let server, !["0.0.0.0", "::", "[::]"].contains(server.host) { hosts.append(server.host.lowercased()) }
        if let id = configuration.endpointID?.lowercased() { hosts.append("\(id).api.runpod.ai") }
        if server?.kind == .loadBalancing { hosts.append("*.api.runpod.ai") }
        hosts += configuration.mcp.allowedHosts
        if configuration.mcp.allowedHosts.isEmpty, configuration.serverAPIKey != nil { hosts.append("*") }
        self.init(hosts: hosts, origins: configuration.mcp.allowedOrigins)
    }

    func check(host: String?, origin: String?) -> Denial? {
        let requestHost = host.map(Self.hostName)
        if let requestHost, !matches(requestHost, hosts) { return .foreignHost(host ?? "") }
        guard let origin else { return nil }
        let lowered = origin.lowercased()
        if origins.contains("*") || origins.contains(lowered) { return nil }
        // `null` (a sandboxed or file page) has no host: foreign unless allowed by name above.
        let parts = lowered.split(separator: "/", omittingEmptySubsequences: true)
        guard parts.count >= 2, parts[0].hasSuffix(":"), lowered.contains("://") else { return .foreignOrigin(origin) }
        let originHost = Self.hostName(String(parts[1]))
        if originHost == requestHost { return nil }
        let named = hosts.filter { $0 != "*" } + origins.filter { !$0.contains("://") }
        return matches(originHost, named) ? nil : .foreignOrigin(origin)
    }

    private func matches(_ host: String, _ patterns: [String]) -> Bool {
        patterns.contains { pattern in
            if pattern == "*" { return true }
            if pattern.hasPrefix("*.") { return host.hasSuffix(pattern.dropFirst(1)) && host.count > pattern.count - 1 }
            return Self.hostName(pattern) == host
        }
    }

    /// `Example.com:8000` → `example.com`; `[::1]:8000` → `::1`.
    static func hostName(_ value: String) -> String {
        let lowered = value.lowercased()
        if lowered.hasPrefix("[") {
            return String(lowered.dropFirst().prefix { $0 != "]" })
        }
        let colons = lowered.filter { $0 == ":" }.count
        if colons == 1, let colon = lowered.firstIndex(of: ":") { return String(lowered[..<colon]) }
        return lowered
    }
}

import WorkerRuntime

/// The endpoint server's flags and variables, read once at start-up into the mode it serves
/// (`ServerConfiguration`): `--local`, `--host`, `--port`, `--allow-unauthenticated`, `PORT`,
/// `PORT_HEALTH`, `HEALTH_CHECK_PATH`, `RUNPOD_API_KEY`/`API_KEY`, the limits (`HTTP_*`,
/// `QUEUED_INPUT_MB`, `RETAINED_RESULTS_MB`, `LOCAL_RESULT_RETENTION`), `MCP_ALLOWED_*` and
/// `RATE_LIMIT_*`.
package enum EndpointServerSettings {
    static let local = FeatureFlag(
        ["--local", "--rp_serve_api"], help: "Serve RunPod's endpoint API (/run, /runsync, /status, /stream, …) for this handler.")
    static let host = FeatureFlag(["--host", "--rp_api_host"], takesValue: true, help: "Address to serve on (default 127.0.0.1).")
    static let port = FeatureFlag(["--port", "--rp_api_port"], takesValue: true, help: "Port to serve on (default 8000).")
    static let allowUnauthenticated = FeatureFlag(
        ["--allow-unauthenticated"], help: "Allow serving on a non-loopback address without RUNPOD_API_KEY.")
    static let flags = [local, host, port, allowUnauthenticated]

    /// The mode names, as logs and `FeatureMode` carry them.
    static let localMode = "local"
    static let loadBalancingMode = "load-balancing"

    /// `--local` claims its mode by flag, `PORT` from the environment (the platform's queue
    /// variables win over it); nothing when neither is there.
    package static func configure(_ setup: FeatureSetup) throws(ConfigurationError) -> FeatureConfiguration {
        let flags = setup.flags, env = setup.environment
        let flagPort = try flags.whole(port.name, in: 0...65535, expected: "a port number from 1 to 65535, or 0 for any free port")
        let local = flags.isSet(Self.local.name)
        var server = ServerConfiguration(
            kind: local ? .local : .loadBalancing, host: flags.value(host.name) ?? (local ? "127.0.0.1" : "0.0.0.0"),
            port: flagPort ?? 8000, healthPort: try envPort(env, "PORT_HEALTH"),
            apiKey: env.string("RUNPOD_API_KEY") ?? env.string("API_KEY"),
            allowUnauthenticated: !local || flags.isSet(allowUnauthenticated.name))
        if let path = env.string("HEALTH_CHECK_PATH") {
            guard path.hasPrefix("/"), !path.contains(" "), !path.contains("?") else {
                throw .invalidValue("HEALTH_CHECK_PATH", path, expected: "a path starting with /, such as /ping")
            }
            server.healthPath = path
        }
        try readPolicies(env, into: &server)
        if !local, let flagPort {
            throw .invalidValue(
                "--port", "\(flagPort)", expected: "--port only with --local (a load-balancing worker listens on PORT): nothing would listen on it")
        }
        if local, !server.isLoopback, server.apiKey == nil, !server.allowUnauthenticated {
            throw .invalidValue(
                "--host", server.host,
                expected: "a loopback address (127.0.0.1, ::1, localhost) unless RUNPOD_API_KEY is set or "
                    + "--allow-unauthenticated is passed: refusing to serve on a network without an API key")
        }
        // Checked in every mode, as the other variables are: a bad PORT beside --local is still a mistake.
        let envPort = try envPort(env, "PORT")
        var claim: ModeClaim?
        if local {
            claim = ModeClaim(FeatureMode(name: localMode, servesHTTP: true, settings: server), strength: .flag)
        } else if let envPort {
            server.port = envPort
            claim = ModeClaim(FeatureMode(name: loadBalancingMode, servesHTTP: true, settings: server), strength: .environment)
        }
        let hostFlag = flags.value(host.name)
        return FeatureConfiguration(
            settings: server, mode: claim,
            check: { mode throws(ConfigurationError) in
                if let hostFlag, !mode.isServer {
                    throw .invalidValue("--host", hostFlag, expected: "--host only with --local or in load-balancing mode (PORT)")
                }
            })
    }

    private static func envPort(_ env: EnvironmentReader, _ variable: String) throws(ConfigurationError) -> Int? {
        guard let raw = env.string(variable) else { return nil }
        guard let port = Int(raw), (0...65535).contains(port) else {
            throw .invalidValue(variable, raw, expected: "a port number from 1 to 65535 (or 0 for any free port)")
        }
        return port
    }

    /// The limits, the Host and Origin names and the rate limits, which hold in every HTTP mode.
    package static func readPolicies(_ env: EnvironmentReader, into server: inout ServerConfiguration) throws(ConfigurationError) {
        server.limits = try limits(env)
        server.access = HostAccess(
            allowedHosts: try HostAccess.patterns(env.string("MCP_ALLOWED_HOSTS"), "MCP_ALLOWED_HOSTS", origins: false),
            allowedOrigins: try HostAccess.patterns(env.string("MCP_ALLOWED_ORIGINS"), "MCP_ALLOWED_ORIGINS", origins: true))
        server.rateLimits = try rateLimits(env)
    }

    package static func limits(_ env: EnvironmentReader) throws(ConfigurationError) -> ServerLimits {
        var limits = ServerLimits()
        if let seconds = try env.positiveSeconds("HTTP_IDLE_TIMEOUT") { limits.idleTimeout = seconds }
        if let count = try env.whole("HTTP_MAX_CONNECTIONS", in: 1...1_000_000) { limits.maxConnections = count }
        if let megabytes = try env.whole("QUEUED_INPUT_MB", in: 1...1_000_000) { limits.queuedInputBytes = megabytes << 20 }
        if let megabytes = try env.whole("RETAINED_RESULTS_MB", in: 1...1_000_000) { limits.retainedResultBytes = megabytes << 20 }
        if let seconds = try env.positiveSeconds("LOCAL_RESULT_RETENTION") { limits.retention = seconds }
        return limits
    }

    package static func rateLimits(_ env: EnvironmentReader) throws(ConfigurationError) -> RateLimits {
        func rule(_ variable: String) throws(ConfigurationError) -> RateLimitRule? {
            guard let raw = env.string(variable) else { return nil }
            guard let rule = RateLimitRule(parsing: raw) else {
                throw .invalidValue(variable, raw, expected: "requests/window, such as 100/10s, 5/1m or 20/500ms")
            }
            return rule
        }
        var limits = RateLimits()
        for route in RateLimitedRoute.allCases {
            if let rule = try rule(route.variable) { limits.routes[route] = rule }
        }
        limits.fallback = try rule("RATE_LIMIT_DEFAULT")
        // A misspelt route (RATE_LIMIT_RUN_SYNC) would otherwise limit nothing, silently.
        let known = Set(RateLimitedRoute.allCases.map(\.variable) + ["RATE_LIMIT_DEFAULT"])
        if let unknown = env.environment.keys.filter({ $0.hasPrefix("RATE_LIMIT_") && !known.contains($0) }).sorted().first {
            throw .invalidValue(
                unknown, env.environment[unknown] ?? "", expected: "a route's budget: one of \(known.sorted().joined(separator: ", "))")
        }
        return limits
    }
}

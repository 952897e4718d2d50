import WorkerRuntime

/// How the endpoint API is served (`--local` on a developer's machine, or a load-balancing worker)
/// and every setting of the HTTP modes, read once by the feature (`EndpointServerSettings`).
package struct ServerConfiguration: Sendable, Equatable {
    package enum Kind: Sendable, Equatable {
        /// `--local`: RunPod's endpoint API for one handler, for testing.
        case local
        /// `PORT` set: a load-balancing worker behind RunPod's balancer.
        case loadBalancing
    }

    package var kind: Kind
    package var host: String
    package var port: Int
    /// `PORT_HEALTH`; nil serves the health check on `port`. Ports may be 0: any free port,
    /// reported in the log (tests use it).
    package var healthPort: Int?
    /// `HEALTH_CHECK_PATH`.
    package var healthPath: String
    /// `RUNPOD_API_KEY` (or `API_KEY`): when set, every request but the health check needs it.
    package var apiKey: String?
    package var allowUnauthenticated: Bool
    /// Every size, count and time limit of the HTTP modes.
    package var limits = ServerLimits()
    /// Names beyond the defaults that `Host` and `Origin` may carry.
    package var access = HostAccess()
    /// Request budgets (`RATE_LIMIT_<ROUTE>`, `RATE_LIMIT_DEFAULT`); off by default.
    package var rateLimits = RateLimits()

    package init(
        kind: Kind = .local, host: String = "127.0.0.1", port: Int = 8000, healthPort: Int? = nil,
        healthPath: String = "/ping", apiKey: String? = nil, allowUnauthenticated: Bool = false, limits: ServerLimits = ServerLimits(),
        access: HostAccess = HostAccess(), rateLimits: RateLimits = RateLimits()
    ) {
        self.limits = limits
        self.access = access
        self.rateLimits = rateLimits
        self.kind = kind
        self.host = host
        self.port = port
        self.healthPort = healthPort
        self.healthPath = healthPath
        self.apiKey = apiKey
        self.allowUnauthenticated = allowUnauthenticated
    }

    /// The port of a health-check listener of its own: `PORT_HEALTH` when it differs from `PORT`
    /// (0, any free port, always differs); nil serves the health check with the API.
    package var separateHealthPort: Int? {
        guard let healthPort, healthPort == 0 || healthPort != port else { return nil }
        return healthPort
    }

    /// Loopback addresses need no key; anything else does, unless explicitly allowed.
    package var isLoopback: Bool { isLoopbackHost(host) }
}

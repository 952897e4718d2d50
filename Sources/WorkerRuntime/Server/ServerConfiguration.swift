/// How the endpoint API is served: `--local` on a developer's machine, or a load-balancing worker.
public struct ServerConfiguration: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        /// `--local`: RunPod's endpoint API for one handler, for testing.
        case local
        /// `PORT` set: a load-balancing worker behind RunPod's balancer.
        case loadBalancing
    }

    public var kind: Kind
    public var host: String
    public var port: Int
    /// `PORT_HEALTH`; nil serves the health check on `port`.
    public var healthPort: Int?
    /// `HEALTH_CHECK_PATH`.
    public var healthPath: String
    /// `RUNPOD_API_KEY` (or `API_KEY`): when set, every request but the health check needs it.
    public var apiKey: String?
    public var allowUnauthenticated: Bool
    public var limits = Limits()

    public struct Limits: Sendable, Equatable {
        public var runBodyBytes = 10 * 1024 * 1024
        public var runsyncBodyBytes = 20 * 1024 * 1024
        /// How long finished /run results stay queryable (`LOCAL_RESULT_RETENTION`, seconds).
        public var retention: Duration = .seconds(30 * 60)
        public var syncRetention: Duration = .seconds(60)
        /// At most this many finished /run (and /runsync) results are kept, oldest forgotten first.
        public var maxRetainedResults = 100_000
        public var maxRetainedSyncResults = 10_000
        public var webhookRetryDelays: [Duration] = [.seconds(10), .seconds(10)]
        public init() {}
    }

    public init(
        kind: Kind = .local, host: String = "127.0.0.1", port: Int = 8000, healthPort: Int? = nil,
        healthPath: String = "/ping", apiKey: String? = nil, allowUnauthenticated: Bool = false
    ) {
        self.kind = kind
        self.host = host
        self.port = port
        self.healthPort = healthPort
        self.healthPath = healthPath
        self.apiKey = apiKey
        self.allowUnauthenticated = allowUnauthenticated
    }

    /// Loopback addresses need no key; anything else does, unless explicitly allowed.
    var isLoopback: Bool {
        host == "127.0.0.1" || host == "localhost" || host == "::1" || host.hasPrefix("127.")
    }
}

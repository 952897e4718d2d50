import WorkerRuntime

/// The response cache's settings, read once from the environment.
public struct ResponseCacheConfiguration: Sendable, Equatable {
    /// How long an answer is kept: `CACHE_TTL` seconds, else the handler's own default, else
    /// 300. Zero turns the cache off.
    public var ttl: Duration
    /// How long an answer the handler marks "nothing found" is kept (`CACHE_NEGATIVE_TTL`,
    /// default 30 s): long enough to absorb repeats, short enough that new data shows up.
    public var negativeTTL: Duration
    /// The in-process cache's size in bytes of keys and answers' JSON (`CACHE_MAX_BYTES`,
    /// default 64 MiB); least recently used entries go first. With Redis it holds recent hits.
    public var maxBytes: Int

    public init(ttl: Duration = .seconds(300), negativeTTL: Duration = .seconds(30), maxBytes: Int = 64 << 20) {
        self.ttl = ttl
        self.negativeTTL = negativeTTL
        self.maxBytes = maxBytes
    }

    public var isEnabled: Bool { ttl > .zero }

    /// `defaultTTL` is the handler's choice, which `CACHE_TTL` overrides.
    public static func fromEnvironment(
        _ env: [String: String], defaultTTL: Duration = .seconds(300)
    ) throws(ConfigurationError) -> ResponseCacheConfiguration {
        let reader = EnvironmentReader(env)
        func seconds(_ name: String) throws(ConfigurationError) -> Duration? {
            try reader.seconds(name, in: 0...31_536_000, expected: "seconds, 0 to turn the cache off")
        }
        var configuration = ResponseCacheConfiguration(ttl: defaultTTL)
        if let ttl = try seconds("CACHE_TTL") { configuration.ttl = ttl }
        if let ttl = try seconds("CACHE_NEGATIVE_TTL") { configuration.negativeTTL = ttl }
        if let raw = reader.string("CACHE_MAX_BYTES") {
            guard let bytes = Int(raw), bytes >= 1024 else {
                throw .invalidValue("CACHE_MAX_BYTES", raw, expected: "a whole number of bytes, at least 1024")
            }
            configuration.maxBytes = bytes
        }
        return configuration
    }
}

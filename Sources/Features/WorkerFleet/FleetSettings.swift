#if canImport(Glibc)
import Glibc
#endif
import RedisClient
import WorkerRuntime

/// What the fleet reads, once, at start-up: where the queue is, which endpoint this process
/// serves, and the lease rules. Built from a dictionary in tests (`FleetSettings.read`).
package struct FleetSettings: Sendable {
    /// `QUEUE_URL`, with the `REDIS_*` tuning variables and `REDIS_CA_FILE` applied.
    package var redis: RedisConfiguration
    /// `ENDPOINT_ID`: the fleet's name in Redis (every key carries it as a hash tag).
    package var endpoint: String
    /// `MAX_ATTEMPTS`: starts of one job before it fails as poison.
    package var maxAttempts: Int = 3
    /// `FLEET_LEASE_SECONDS`: how long a job's worker may go silent before another runs it.
    package var lease: Duration = .seconds(15)
    /// `FLEET_HEARTBEAT_SECONDS`: how often a worker renews the leases of its jobs.
    package var heartbeat: Duration = .seconds(5)
    /// `--gateway-only` or `WORKER_CONCURRENCY=0`: an HTTP gateway that takes no jobs itself.
    package var gatewayOnly = false
    /// `--fleet-worker`: take jobs only, even where an HTTP mode would be chosen.
    package var workerOnly = false

    package var keys: FleetKeys { FleetKeys(endpoint: endpoint) }

    /// nil without `QUEUE_URL`; a `ConfigurationError` naming the variable for any bad value.
    package static func read(
        _ environment: EnvironmentReader, executable: String, concurrency: Int, flags: FeatureFlagValues = FeatureFlagValues()
    ) throws(ConfigurationError) -> FleetSettings? {
        let maxAttempts = try environment.whole("MAX_ATTEMPTS", in: 1...1000)
        let lease = try environment.seconds("FLEET_LEASE_SECONDS", in: 1...86_400)
        let heartbeat = try environment.seconds("FLEET_HEARTBEAT_SECONDS", in: 0.1...3600)
        let endpoint = environment.string("ENDPOINT_ID")
        if let endpoint { try checkEndpoint(endpoint, variable: "ENDPOINT_ID") }
        let gatewayOnly = flags.isSet("--gateway-only")
        let workerOnly = flags.isSet("--fleet-worker")
        guard let url = environment.string("QUEUE_URL") else {
            for (name, set) in [("--gateway-only", gatewayOnly), ("--fleet-worker", workerOnly)] where set {
                throw .invalidValue(name, "", expected: "QUEUE_URL set to the fleet's Redis (redis:// or rediss://); see docs/fleet.md")
            }
            // A fleet setting without the fleet would be ignored: say so (empty values are unset,
            // as templates leave them).
            for name in ["ENDPOINT_ID", "MAX_ATTEMPTS", "FLEET_LEASE_SECONDS", "FLEET_HEARTBEAT_SECONDS"] {
                if let value = environment.string(name) {
                    throw .invalidValue(name, value, expected: "nothing without QUEUE_URL: it is a fleet setting (docs/fleet.md); set QUEUE_URL or unset \(name)")
                }
            }
            return nil
        }
        var redis: RedisConfiguration
        do {
            var variables = environment.environment
            variables["REDIS_URL"] = url
            guard let read = try RedisConfiguration.fromEnvironment(variables) else { return nil }
            redis = read
        } catch {
            // The URL was read as REDIS_URL; it is QUEUE_URL here.
            let bad = error.badSetting
            throw .invalidValue(bad.variable == "REDIS_URL" ? "QUEUE_URL" : bad.variable, bad.value, expected: bad.expected)
        }
        if redis.tls, let ca = redis.caFile, access(ca, R_OK) != 0 {
            throw .invalidValue("REDIS_CA_FILE", ca, expected: "a readable PEM file of the CA that signed the fleet's Redis certificate")
        }
        // Workers hold a blocked read and a subscription besides their calls; a small pool is plenty.
        if environment.string("REDIS_POOL_SIZE") == nil { redis.poolSize = 8 }
        var settings = FleetSettings(redis: redis, endpoint: endpoint ?? Self.defaultEndpoint(executable))
        if let maxAttempts { settings.maxAttempts = maxAttempts }
        if let lease { settings.lease = lease }
        if let heartbeat { settings.heartbeat = heartbeat }
        guard settings.heartbeat * 2 <= settings.lease else {
            throw .invalidValue(
                "FLEET_HEARTBEAT_SECONDS", environment.string("FLEET_HEARTBEAT_SECONDS") ?? "5",
                expected: "at most half of FLEET_LEASE_SECONDS (\(settings.lease)), so one late beat does not lose a lease")
        }
        if gatewayOnly && workerOnly {
            throw .invalidValue("--gateway-only", "", expected: "not together with --fleet-worker: a process either takes jobs or does not")
        }
        settings.gatewayOnly = gatewayOnly || concurrency == 0
        settings.workerOnly = workerOnly
        if workerOnly && concurrency == 0 {
            throw .invalidValue("WORKER_CONCURRENCY", "0", expected: "1 or more for a fleet worker (0 takes no jobs)")
        }
        return settings
    }

    /// The executable's name, as the endpoint's when `ENDPOINT_ID` is not set.
    static func defaultEndpoint(_ executable: String) -> String {
        let name = executable.split(separator: "/").last.map(String.init) ?? "worker"
        let cleaned = String(name.unicodeScalars.filter { $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || "-_.".unicodeScalars.contains($0)) }.map(Character.init))
        return cleaned.isEmpty ? "worker" : cleaned
    }

    /// Letters, digits, `-`, `_`, `.`, at most 128: it becomes part of every key, inside the
    /// `{…}` hash tag, so braces, spaces and control characters are refused.
    static func checkEndpoint(_ endpoint: String, variable: String) throws(ConfigurationError) {
        let allowed = endpoint.utf8.allSatisfy { byte in
            (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
                || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_") || byte == UInt8(ascii: ".")
        }
        guard allowed, !endpoint.isEmpty, endpoint.utf8.count <= 128 else {
            throw .invalidValue(variable, endpoint, expected: "1 to 128 letters, digits, '-', '_' or '.'")
        }
    }
}

/// The names of one endpoint's keys and channels. The `{endpoint}` hash tag puts them all in one
/// Redis Cluster slot, so every script may touch any of them.
package struct FleetKeys: Sendable {
    package let endpoint: String
    package let prefix: String

    package init(endpoint: String) {
        self.endpoint = endpoint
        self.prefix = "fleet:{\(endpoint)}:"
    }

    package var queue: String { prefix + "queue" }
    package var stats: String { prefix + "stats" }
    package var dead: String { prefix + "dead" }
    package var workers: String { prefix + "workers" }
    package var events: String { prefix + "events" }
    package var cancels: String { prefix + "cancels" }
    package func job(_ id: String) -> String { prefix + "job:" + id }
    package func chunks(_ id: String) -> String { prefix + "chunks:" + id }
    package func idempotency(_ key: String) -> String { prefix + "idem:" + key }
    /// The consumer group every worker of the endpoint reads the queue in.
    package static let group = "workers"
}

import RedisClient
import TestSupport
import Testing
import WorkerRuntime
@testable import WorkerFleet

@Suite("Fleet settings", .defaultPass)
struct FleetSettingsTests {
    func read(_ environment: [String: String], concurrency: Int = 1, flags: [String: String?] = [:]) throws(ConfigurationError) -> FleetSettings? {
        try FleetSettings.read(EnvironmentReader(environment), executable: "/usr/bin/echo", concurrency: concurrency, flags: FeatureFlagValues(flags))
    }

    @Test("QUEUE_URL and ENDPOINT_ID put a process in a fleet; defaults are the issue's")
    func defaults() throws {
        let settings = try #require(try read(["QUEUE_URL": "redis://127.0.0.1:6390/2"]))
        #expect(settings.endpoint == "echo")
        #expect(settings.redis.port == 6390 && settings.redis.database == 2)
        #expect(settings.maxAttempts == 3 && settings.lease == .seconds(15) && settings.heartbeat == .seconds(5))
        #expect(!settings.gatewayOnly && !settings.workerOnly)
        #expect(settings.keys.queue == "fleet:{echo}:queue" && settings.keys.job("a") == "fleet:{echo}:job:a")
        #expect(try read([:]) == nil)
    }

    @Test("Every bad value is refused, naming its variable or flag")
    func refusals() throws {
        let cases: [([String: String], [String: String?], Int, String)] = [
            (["QUEUE_URL": "ftp://x"], [:], 1, "QUEUE_URL"),
            (["QUEUE_URL": "redis://h", "MAX_ATTEMPTS": "0"], [:], 1, "MAX_ATTEMPTS"),
            (["QUEUE_URL": "redis://h", "FLEET_LEASE_SECONDS": "abc"], [:], 1, "FLEET_LEASE_SECONDS"),
            (["QUEUE_URL": "redis://h", "FLEET_LEASE_SECONDS": "4", "FLEET_HEARTBEAT_SECONDS": "3"], [:], 1, "FLEET_HEARTBEAT_SECONDS"),
            (["QUEUE_URL": "redis://h", "ENDPOINT_ID": "a}b"], [:], 1, "ENDPOINT_ID"),
            ([:], ["--gateway-only": nil], 1, "--gateway-only"),
            ([:], ["--fleet-worker": nil], 1, "--fleet-worker"),
            (["QUEUE_URL": "redis://h"], ["--gateway-only": nil, "--fleet-worker": nil], 1, "--gateway-only"),
            (["QUEUE_URL": "redis://h"], ["--fleet-worker": nil], 0, "WORKER_CONCURRENCY"),
            (["MAX_ATTEMPTS": "2"], [:], 1, "MAX_ATTEMPTS"),
            (["ENDPOINT_ID": "e"], [:], 1, "ENDPOINT_ID"),
            (["QUEUE_URL": "rediss://h", "REDIS_CA_FILE": "/nonexistent/ca.pem"], [:], 1, "REDIS_CA_FILE"),
        ]
        for (environment, flags, concurrency, name) in cases {
            do {
                _ = try read(environment, concurrency: concurrency, flags: flags)
                Issue.record("\(environment) \(flags) was accepted")
            } catch let error as ConfigurationError {
                #expect(error.variable == name, "\(environment) \(flags): \(error)")
            }
        }
    }

    @Test("WORKER_CONCURRENCY=0 or --gateway-only makes a gateway that takes no jobs")
    func gatewayOnly() throws {
        #expect(try read(["QUEUE_URL": "redis://h"], concurrency: 0)?.gatewayOnly == true)
        #expect(try read(["QUEUE_URL": "redis://h"], flags: ["--gateway-only": nil])?.gatewayOnly == true)
        #expect(try read(["QUEUE_URL": "redis://h"], flags: ["--fleet-worker": nil])?.workerOnly == true)
    }

    @Test("The default endpoint is the executable's name, cleaned")
    func endpointName() {
        #expect(FleetSettings.defaultEndpoint("/x/y/memory") == "memory")
        #expect(FleetSettings.defaultEndpoint("/x/{weird name}") == "weirdname")
    }
}

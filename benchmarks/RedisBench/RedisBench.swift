import Dispatch
import RedisClient

#if canImport(Glibc)
import Glibc
#endif

/// GET round trips through RedisClient on one connection, at a pipeline depth, as
/// `redis-benchmark -t get -c 1 -P <depth>` measures them: prints `depth <d>: <n> GET/s`.
/// Usage: redis-bench <redis url> <requests> <depth>...
@main
struct RedisBench {
    static func main() async throws {
        let arguments = CommandLine.arguments
        guard arguments.count >= 4, let requests = Int(arguments[2]) else {
            print("usage: redis-bench <redis url> <requests> <depth>...")
            exit(2)
        }
        var configuration = try RedisConfiguration(url: arguments[1])
        configuration.poolSize = 1
        let redis = try RedisClient(configuration: configuration)
        try await redis.set("key:__rand_int__", Array("xxx".utf8))
        for depth in arguments[3...].compactMap({ Int($0) }) where true {
            // Warm-up: the connection, the code paths.
            try await run(redis, requests: min(requests, 10_000), depth: depth)
            let started = ContinuousClock.now
            try await run(redis, requests: requests, depth: depth)
            let elapsed = ContinuousClock.now - started
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            print("depth \(depth): \(Int(Double(requests) / seconds)) GET/s")
        }
        await redis.shutdown()
        if CommandLine.arguments.contains("--direct") { try direct(configuration, requests: requests) }
    }

    /// The connection's own cost with no thread hops (blocking on this thread): the floor.
    static func direct(_ configuration: RedisConfiguration, requests: Int) throws {
        let connection = try RedisConnection.open(configuration, tls: nil, queue: DispatchQueue(label: "unused"))
        let started = ContinuousClock.now
        for _ in 0..<requests {
            _ = try connection.execute([["GET", "key:__rand_int__"]], deadline: .now + .seconds(5), timeout: .seconds(5))
        }
        let elapsed = ContinuousClock.now - started
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        print("direct depth 1: \(Int(Double(requests) / seconds)) GET/s")
        let batch: [RedisCommand] = Array(repeating: ["GET", "key:__rand_int__"], count: 64)
        let started64 = ContinuousClock.now
        for _ in 0..<(requests * 5 / 64) {
            _ = try connection.execute(batch, deadline: .now + .seconds(5), timeout: .seconds(5))
        }
        let elapsed64 = ContinuousClock.now - started64
        let seconds64 = Double(elapsed64.components.seconds) + Double(elapsed64.components.attoseconds) / 1e18
        print("direct depth 64: \(Int(Double(requests * 5) / seconds64)) GET/s")
    }

    static func run(_ redis: RedisClient, requests: Int, depth: Int) async throws {
        if depth == 1 {
            for _ in 0..<requests {
                guard try await redis.get("key:__rand_int__") != nil else { fatalError("GET returned nothing") }
            }
            return
        }
        let batch: [RedisCommand] = Array(repeating: ["GET", "key:__rand_int__"], count: depth)
        for _ in 0..<(requests / depth) {
            let replies = try await redis.pipeline(batch)
            guard replies.count == depth, replies[0] != .null else { fatalError("a pipeline came back short") }
        }
    }
}

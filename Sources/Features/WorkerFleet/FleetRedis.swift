import Logging
import RedisClient
import Synchronization

/// The fleet's Redis, one server or a Cluster (found out on first contact, from `INFO`): the
/// commands every step sends (pooled), and a connector for what holds a connection of its own (a
/// worker's blocked read, the subscriptions), opened on the node serving the endpoint's slot.
/// Nothing is opened until first use, and a failed first contact is tried again on the next call:
/// a gateway started while Redis is down serves 503s and recovers by itself.
final class FleetRedis: Sendable {
    let settings: FleetSettings
    let keys: FleetKeys
    private let logger: Logger
    private let state = Mutex(State())

    private struct State {
        var commands: (any RedisCommands)?
        var pipeline: FleetPipeline?
        var connector: RedisConnector?
        var connecting: Task<any RedisCommands, any Error>?
        var shutDown = false
    }

    init(settings: FleetSettings, logger: Logger) {
        self.settings = settings
        self.keys = settings.keys
        self.logger = logger
    }

    var server: String { settings.redis.server }

    /// The client, after the first contact checked the server (version, cluster or not) and made
    /// the consumer group.
    func commands() async throws -> any RedisCommands {
        let task = state.withLock { state -> Task<any RedisCommands, any Error>? in
            if state.commands != nil { return nil }
            if let running = state.connecting { return running }
            let task = Task { try await self.connect() }
            state.connecting = task
            return task
        }
        guard let task else { return state.withLock { $0.commands! } }
        do {
            let commands = try await task.value
            let pipeline = FleetPipeline(commands: commands, routing: keys.queue)
            state.withLock { state in
                state.commands = commands
                state.pipeline = pipeline
                state.connecting = nil
            }
            return commands
        } catch {
            state.withLock { $0.connecting = nil }
            throw error
        }
    }

    /// The calls of every step, batched as they come (`FleetPipeline`).
    func pipeline() async throws -> FleetPipeline {
        if let pipeline = state.withLock({ $0.pipeline }) { return pipeline }
        _ = try await commands()
        return state.withLock { $0.pipeline! }
    }

    /// Where blocked reads and subscriptions connect: the endpoint's node.
    func connector() async throws -> RedisConnector {
        if let connector = state.withLock({ $0.connector }) { return connector }
        let commands = try await commands()
        var configuration = settings.redis
        if let cluster = commands as? RedisClusterClient {
            let node = try await cluster.node(forKey: keys.queue)
            guard let colon = node.lastIndex(of: ":"), let port = Int(node[node.index(after: colon)...]) else {
                throw RedisError.unexpectedReply(server, "CLUSTER SLOTS", .bulk(Array(node.utf8)))
            }
            var host = String(node[..<colon])
            if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
            configuration.host = host
            configuration.port = port
        }
        let made = try RedisConnector(configuration: configuration)
        return state.withLock { state in
            if let existing = state.connector { return existing }
            state.connector = made
            return made
        }
    }

    /// The endpoint's slot moved (a `MOVED` to a blocked read): the next `connector()` asks again.
    func forgetConnector() {
        let old = state.withLock { state -> RedisConnector? in
            defer { state.connector = nil }
            return state.connector
        }
        old?.shutdown()
    }

    func shutdown() async {
        let (commands, connector) = state.withLock { state in
            state.shutDown = true
            return (state.commands, state.connector)
        }
        connector?.shutdown()
        if let client = commands as? RedisClient { await client.shutdown() }
        if let cluster = commands as? RedisClusterClient { await cluster.shutdown() }
    }

    private func connect() async throws -> any RedisCommands {
        let first = try RedisClient(configuration: settings.redis)
        let commands: any RedisCommands
        do {
            let info = try await first.send(["INFO", "server"]).string ?? ""
            try Self.checkVersion(info, server: server)
            let cluster = try await first.send(["INFO", "cluster"]).string ?? ""
            if cluster.contains("cluster_enabled:1") {
                await first.shutdown()
                let client = try RedisClusterClient(configuration: settings.redis)
                try await client.loadSlotMap()
                commands = client
            } else {
                commands = first
            }
        } catch {
            await first.shutdown()
            throw error
        }
        try await Self.makeGroup(commands, keys: keys)
        logger.debug("Fleet: connected to \(commands is RedisClusterClient ? "the Redis Cluster at" : "Redis at") \(server)")
        return commands
    }

    /// The workers' consumer group, from the stream's first entry (`0`: jobs queued before any
    /// worker came are theirs too). `BUSYGROUP` is every caller's but the first.
    static func makeGroup(_ commands: any RedisCommands, keys: FleetKeys) async throws {
        do {
            _ = try await commands.send(
                ["XGROUP", "CREATE", RedisArgument(keys.queue), RedisArgument(FleetKeys.group), "0", "MKSTREAM"],
                keys: [RedisArgument(keys.queue)])
        } catch let error as RedisError where error.isServerError && error.reason.hasPrefix("BUSYGROUP") {
            return
        }
    }

    /// Streams with consumer groups and `XAUTOCLAIM` need Redis 6.2.
    static func checkVersion(_ info: String, server: String) throws {
        guard let line = info.split(whereSeparator: { $0 == "\r" || $0 == "\n" }).first(where: { $0.hasPrefix("redis_version:") })
        else { return }
        let parts = line.dropFirst("redis_version:".count).split(separator: ".").compactMap { Int($0) }
        guard parts.count >= 2 else { return }
        if parts[0] < 6 || (parts[0] == 6 && parts[1] < 2) {
            throw FleetError.oldRedis(server: server, version: String(line.dropFirst("redis_version:".count)))
        }
    }
}

import ConnectionPool
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A client of a Redis Cluster: its URL names any node (the seed), from which it learns which
/// master serves each of the 16384 slots (`CLUSTER SLOTS`). Each command goes to the master of
/// its keys' slot, through a `RedisClient` per node (same TLS, AUTH, pool size and timeouts, one
/// reactor thread for them all); a pipeline or script whose keys share a slot is one exchange
/// with that slot's master, and keys of different slots are refused before anything is sent
/// (give them a common hash tag: `{endpoint}:jobs`, `{endpoint}:results`). Keyless commands go
/// to any master.
///
/// Redirections are followed, at most `maxRedirects` per call: `MOVED` (the slot has moved for
/// good) updates the map and reads it again in the background, at most once per 100 ms;
/// `ASK` (the key went ahead during a migration) sends `ASKING` and the command to the node
/// named, in one exchange, and leaves the map as it is. A node that cannot be reached has the
/// map read again once, in case another master took its slots over, before the call fails
/// naming the node. Make one per process and call `shutdown()` when done.
public final class RedisClusterClient: RedisCommands, Sendable {
    /// The seed node's settings, used for every node (only database 0 exists in a cluster).
    public let configuration: RedisConfiguration
    /// The node the URL names: asked for the slot map first, and again when the nodes the map
    /// names do not answer.
    let seed: ClusterNodeAddress
    private let tls: RedisTLSContext?
    /// Waits for the sockets of every node's connections (nil when the kernel refused one: then
    /// each connection waits on its own queue). Ends at `shutdown()` or with the client.
    private let reactor: ReadinessReactor?
    let state = Mutex(State())
    /// Spreads keyless commands over the masters.
    private let nextMaster = Atomic<Int>(0)

    struct State {
        /// Nil until the first read of the map.
        var map: ClusterSlotMap?
        var refresh = ClusterRefreshState<Task<ClusterSlotMap, any Error>>()
        /// One client per node, made on first use; kept when a node leaves the map (a call may
        /// still hold it).
        var nodes: [ClusterNodeAddress: RedisClient] = [:]
        var isShutDown = false
    }

    /// Most redirections one call follows; past them it fails (`RedisError`, naming the last).
    public static let maxRedirects = 5

    /// Throws when the settings cannot be used for a cluster (a database other than 0, an
    /// unreadable `REDIS_CA_FILE`). Nothing is sent until the first call (or `loadSlotMap()`).
    public init(configuration: RedisConfiguration) throws(RedisError) {
        guard configuration.database == 0 else {
            throw .invalidSetting("REDIS_URL database", String(configuration.database), expected: "0 (a Redis Cluster has only database 0)")
        }
        self.configuration = configuration
        self.seed = ClusterNodeAddress(host: configuration.host, port: configuration.port)
        self.tls = configuration.tls ? try RedisTLSContext(configuration: configuration) : nil
        // Last, after everything that may throw: its thread holds it until `shutdown`.
        self.reactor = try? ReadinessReactor(sweepInterval: RedisClient.sweepInterval(for: configuration.commandTimeout))
        // A write to a connection the server closed must fail with EPIPE, not kill the process.
        signal(SIGPIPE, SIG_IGN)
    }

    deinit {
        reactor?.shutdown()
    }

    /// Runs one command on the master of its keys' slot (found for the commands `CommandKeys`
    /// knows; any master for others); an error reply throws (`RedisError.isServerError`).
    public func send(_ command: RedisCommand) async throws -> RedisValue {
        try await send(command, keys: CommandKeys.keys(of: command))
    }

    /// Runs one command on the master serving `keys`' slot (any master when there are none).
    public func send(_ command: RedisCommand, keys: [RedisArgument]) async throws -> RedisValue {
        let slot = try commonSlot(of: keys) { command.commandName }
        let (replies, node) = try await run([command], slot: slot)
        if case .error(let message) = replies[0] {
            if message.hasPrefix("CLUSTERDOWN") { refreshSoon() }
            throw RedisError.server(node.description, command.commandName, message)
        }
        return replies[0]
    }

    /// Runs `commands` in one exchange with the master serving their keys' slot (found as `send`
    /// finds them); keys of different slots are refused. Each reply in the result (an error reply
    /// as `.error`); commands redirected during a migration are sent on and their replies put in
    /// place.
    public func pipeline(_ commands: [RedisCommand]) async throws -> [RedisValue] {
        try await pipeline(commands, keys: commands.flatMap { CommandKeys.keys(of: $0) })
    }

    /// `pipeline(_:)` for commands that together touch `keys`.
    public func pipeline(_ commands: [RedisCommand], keys: [RedisArgument]) async throws -> [RedisValue] {
        guard !commands.isEmpty else { return [] }
        let slot = try commonSlot(of: keys) { "pipeline" }
        return try await run(commands, slot: slot).replies
    }

    /// The slot of `key` (0 to 16383), computed as the cluster does: only a `{hash tag}` is hashed
    /// when the key has one.
    public static func slot(of key: String) -> Int {
        HashSlot.of(Array(key.utf8))
    }

    /// `host:port` of the master that serves `key`'s slot, as far as the client knows now (it
    /// reads the slot map first if it has none yet).
    public func node(forKey key: String) async throws -> String {
        let slot = Self.slot(of: key)
        guard let node = try await slotMap().master(of: slot) else { throw RedisError.slotUncovered(clusterName, "node(forKey:)", slot: slot) }
        return node.description
    }

    /// Reads the slot map now (or waits for the read under way): at start-up, to find out at
    /// once that the cluster answers.
    public func loadSlotMap() async throws {
        _ = try await refreshedMap(required: true)
    }

    /// The client of the master serving `slot`, for work that needs a connection of its own on
    /// the right node (a blocking read). It stays the cluster client's: do not shut it down.
    package func nodeClient(forSlot slot: Int) async throws -> RedisClient {
        guard let node = try await slotMap().master(of: slot) else { throw RedisError.slotUncovered(clusterName, "node client", slot: slot) }
        return try client(for: node) { "node client" }
    }

    /// Closes every node's idle connections and fails callers waiting for one; connections in
    /// use close when their call ends. Later calls fail.
    public func shutdown() async {
        let (clients, refresh) = state.withLock { state in
            state.isShutDown = true
            return (Array(state.nodes.values), state.refresh.running)
        }
        refresh?.cancel()
        for client in clients { await client.shutdown() }
        reactor?.shutdown()
    }

    /// Names the cluster in errors that concern no one node.
    var clusterName: String { "\(configuration.server) (cluster)" }

    /// The client of `node`'s connections, made on first use with the seed's settings.
    func client(for node: ClusterNodeAddress, _ command: () -> String) throws(RedisError) -> RedisClient {
        let found = state.withLock { state -> RedisClient? in
            guard !state.isShutDown else { return nil }
            if let existing = state.nodes[node] { return existing }
            var settings = configuration
            settings.host = node.host
            settings.port = node.port
            let made = RedisClient(configuration: settings, tls: tls, reactor: reactor)
            state.nodes[node] = made
            return made
        }
        guard let found else { throw .shutDown(clusterName, command()) }
        return found
    }

    /// Any master, in turn.
    func anyMaster(_ map: ClusterSlotMap) -> ClusterNodeAddress {
        guard !map.masters.isEmpty else { return seed }
        return map.masters[(nextMaster.wrappingAdd(1, ordering: .relaxed).oldValue & Int.max) % map.masters.count]
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import ConnectionPool
import Dispatch
import Synchronization

/// Opens connections of their own, outside `RedisClient`'s pool, for calls that hold one for
/// long: blocking reads (`blockingConnection()`) and subscriptions (`subscriber(...)`). A
/// `BLOCK` on a pooled connection would keep it from every other caller for as long as it waits;
/// 50 blocked readers on a pool of 8 would stop the process's Redis calls. Each connection here
/// has the client's settings (TLS, AUTH, SELECT, timeouts) and waits on one reactor thread
/// shared by all of them, so a blocked read is a socket on the reactor and a suspended task, not
/// a thread. Make one per process beside the `RedisClient`, and call `shutdown()` when done.
public final class RedisConnector: Sendable {
    public let configuration: RedisConfiguration
    private let tls: RedisTLSContext?
    /// Nil when the kernel refused one: each connection then waits on its own queue.
    private let reactor: ReadinessReactor?
    private let ownsReactor: Bool
    private let stopped = Atomic<Bool>(false)

    /// Throws when the TLS settings cannot be used (an unreadable `REDIS_CA_FILE`); connections
    /// are opened on first use.
    public convenience init(configuration: RedisConfiguration) throws(RedisError) {
        let tls = configuration.tls ? try RedisTLSContext(configuration: configuration) : nil
        let reactor = try? ReadinessReactor(sweepInterval: RedisClient.sweepInterval(for: configuration.commandTimeout))
        self.init(configuration: configuration, tls: tls, reactor: reactor, ownsReactor: true)
    }

    /// Sharing a client's TLS context and reactor (one thread for every connection of the
    /// process), which stay the client's to end unless `ownsReactor`.
    package init(configuration: RedisConfiguration, tls: RedisTLSContext?, reactor: ReadinessReactor?, ownsReactor: Bool = false) {
        self.configuration = configuration
        self.tls = tls
        self.reactor = reactor
        self.ownsReactor = ownsReactor
        // As RedisClient: a write to a connection the server (or `interrupt`) closed must fail
        // with EPIPE, not kill the process.
        signal(SIGPIPE, SIG_IGN)
    }

    deinit {
        if ownsReactor { reactor?.shutdown() }
    }

    /// A connection for blocking commands (`XREADGROUP … BLOCK`, `BLPOP`), opened on its first
    /// call. Make one per reader that waits at the same time.
    public func blockingConnection() -> RedisBlockingConnection {
        RedisBlockingConnection(connector: self)
    }

    /// Subscribes to `channels` (`SUBSCRIBE`) and `shardChannels` (`SSUBSCRIBE`, Redis 7; on a
    /// cluster they must share a slot) on a connection of its own, at once, and keeps the
    /// subscription up until `close()`: see `RedisSubscriber`. At most `bufferLimit` events wait
    /// for the consumer; `keepAlive` is how long a quiet connection goes before a `PING` checks it.
    public func subscriber(
        channels: [String] = [], shardChannels: [String] = [], bufferLimit: Int = 1024, keepAlive: Duration = .seconds(30)
    ) -> RedisSubscriber {
        RedisSubscriber(connector: self, channels: channels, shardChannels: shardChannels, bufferLimit: bufferLimit, keepAlive: keepAlive)
    }

    /// Refuses new connections and ends the waits under way: blocked calls fail as shut down,
    /// subscribers end their events. Connections close as their holders let them go.
    public func shutdown() {
        guard !stopped.exchange(true, ordering: .acquiringAndReleasing) else { return }
        if ownsReactor { reactor?.shutdown() }
    }

    package var isShutDown: Bool { stopped.load(ordering: .acquiring) }

    /// Opens a connection on a queue of its own, as `RedisClient` does: resolving the name
    /// blocks, and so (within `REDIS_CONNECT_TIMEOUT`) do TCP, the TLS handshake, AUTH and SELECT.
    /// A cancelled caller still waits for that to end.
    package func open(for command: String) async throws -> RedisDedicatedConnection {
        guard !isShutDown else { throw RedisError.shutDown(configuration.server, command) }
        let queue = DispatchQueue(label: "redis \(configuration.server) dedicated")
        let configuration = configuration
        let tls = tls
        let reactor = reactor
        do {
            return try await queue.perform {
                let connection = try RedisConnection.open(configuration, tls: tls, queue: queue, reactor: reactor)
                return try RedisDedicatedConnection(connection, server: configuration.server)
            }
        } catch {
            throw (error as? RedisError)?.forCommand(command) ?? error
        }
    }
}

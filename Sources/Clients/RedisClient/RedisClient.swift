import ConnectionPool
import Dispatch
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A Redis client: a bounded pool of connections (plain or TLS) and one reactor thread that
/// waits for the replies on all of them, so neither a Swift task nor a thread per connection
/// blocks while a call waits. Commands and pipelines; a connection that broke is closed and a
/// new one opened on the next call (a call on a pooled connection that the server had dropped,
/// as after a restart, is tried once more on a fresh one). Make one per process and call
/// `shutdown()` when done. The typed commands (`get`, `set`, `eval`, ...) are `RedisCommands`'.
public final class RedisClient: RedisCommands, Sendable {
    public let configuration: RedisConfiguration
    private let tls: RedisTLSContext?
    private let pool: ConnectionPool<RedisConnection>
    /// Calls under way: polling for a reply pays only when nothing else is (see `pollBriefly`).
    private let callsInFlight = Atomic<Int>(0)
    /// Waits for every connection's socket (nil when the kernel refused an epoll set or a
    /// thread: then each connection waits on its own queue). Ends at `shutdown()` or with the
    /// client.
    private let reactor: ReadinessReactor?
    /// Whether the reactor ends with this client: a cluster's node clients share the cluster
    /// client's, which ends it.
    private let ownsReactor: Bool

    /// Throws when the TLS settings cannot be used (an unreadable `REDIS_CA_FILE`); connections
    /// are opened on first use.
    public init(configuration: RedisConfiguration) throws(RedisError) {
        self.configuration = configuration
        self.tls = configuration.tls ? try RedisTLSContext(configuration: configuration) : nil
        self.pool = ConnectionPool(capacity: configuration.poolSize)
        // Last, after everything that may throw: its thread holds it until `shutdown`.
        self.reactor = try? ReadinessReactor(sweepInterval: Self.sweepInterval(for: configuration.commandTimeout))
        self.ownsReactor = true
        // A write to a connection the server closed must fail with EPIPE, not kill the process
        // (OpenSSL writes with write(2), which cannot be told MSG_NOSIGNAL).
        signal(SIGPIPE, SIG_IGN)
    }

    /// A client for one node of a cluster, sharing the cluster client's TLS context and reactor
    /// (one thread for every node's connections), which stays the cluster client's to end.
    package init(configuration: RedisConfiguration, tls: RedisTLSContext?, reactor: ReadinessReactor?) {
        self.configuration = configuration
        self.tls = tls
        self.pool = ConnectionPool(capacity: configuration.poolSize)
        self.reactor = reactor
        self.ownsReactor = false
        signal(SIGPIPE, SIG_IGN)
    }

    deinit {
        if ownsReactor { reactor?.shutdown() }
    }

    /// How often the reactor ends waits whose deadline passed, which is how late past its
    /// `REDIS_TIMEOUT` a call that hears nothing may end: a twentieth of the limit, from 2 to
    /// 250 ms (an idle client's thread wakes that often, so not shorter than it needs).
    static func sweepInterval(for timeout: Duration) -> Duration {
        min(.milliseconds(250), max(.milliseconds(2), timeout / 20))
    }

    /// Runs one command; an error reply throws (`RedisError.isServerError`).
    public func send(_ command: RedisCommand) async throws -> RedisValue {
        let reply = try await run([command])[0]
        if case .error(let message) = reply { throw RedisError.server(configuration.server, command.commandName, message) }
        return reply
    }

    /// Runs `commands` in one round trip, on one connection, in order; each reply in the result
    /// (an error reply as `.error`, answering its command only).
    public func pipeline(_ commands: [RedisCommand]) async throws -> [RedisValue] {
        guard !commands.isEmpty else { return [] }
        return try await run(commands)
    }

    /// `send(_:)`: one server holds every key.
    public func send(_ command: RedisCommand, keys: [RedisArgument]) async throws -> RedisValue {
        try await send(command)
    }

    /// `pipeline(_:)`: one server holds every key.
    public func pipeline(_ commands: [RedisCommand], keys: [RedisArgument]) async throws -> [RedisValue] {
        try await pipeline(commands)
    }

    /// Closes idle connections and fails callers waiting for one; connections in use close when
    /// their call ends. Later calls fail.
    public func shutdown() async {
        for connection in pool.shutdown() { connection.close() }
        // Calls still waiting on it go on waiting on their connection's queue.
        if ownsReactor { reactor?.shutdown() }
    }

    /// Connections open now (idle, lent out or being opened).
    public var openConnections: Int { pool.openCount }

    private func run(_ commands: [RedisCommand]) async throws -> [RedisValue] {
        callsInFlight.add(1, ordering: .relaxed)
        defer { callsInFlight.subtract(1, ordering: .relaxed) }
        var retried = false
        while true {
            let (connection, fresh) = try await lease(commands)
            do {
                let replies = try await exchange(commands, on: connection)
                release(connection)
                return replies
            } catch {
                release(connection)
                // A pooled connection the server dropped while idle: nothing was run; the other
                // idle ones are as old, so they go too, and the call is tried on a new one.
                if let error = error as? RedisError, !fresh, !retried, error.isUnavailable, !error.isTimeout {
                    retried = true
                    for stale in pool.discardIdle() { stale.close() }
                    continue
                }
                throw error
            }
        }
    }

    /// Sends from this task (a write that never waits: what does not fit is finished later), so
    /// the request travels while the call decides how to wait. Then the reply is looked for
    /// briefly (`pollBriefly`), else awaited on the reactor, which resumes the task when the
    /// socket is ready (one thread waits for every connection; replies that come together cost
    /// one wake-up). A connection without the reactor waits on its own queue.
    private func exchange(_ commands: [RedisCommand], on connection: RedisConnection) async throws -> [RedisValue] {
        let timeout = configuration.commandTimeout
        try connection.begin(commands, deadline: .now + timeout, timeout: timeout)
        if let replies = try await pollBriefly(connection, commands) { return replies }
        if let replies = try await connection.finish(commands) { return replies }
        return try await connection.queue.perform {
            try connection.execute(commands, deadline: .now + timeout, timeout: timeout)
        }
    }

    /// The longest a call looks for its reply between yields of its task before it waits on the
    /// reactor instead.
    static let pollWindow: Duration = .microseconds(250)

    /// Looks for the reply from this task before waiting on the reactor, with reads that never
    /// block. A reply handed over by the reactor costs a wake-up of its thread and another of a
    /// pool thread; a look costs one `recv`:
    /// - while other calls are under way, the task yields once and looks once: with other tasks
    ///   to run first, a nearby server has usually answered by then;
    /// - alone, and when the server answered the last exchange within `pollWindow` (on this host
    ///   or rack), it looks between yields for up to that long: nothing else wants the core.
    /// A server further away, or one that was slow last time, is waited for on the reactor at once.
    private func pollBriefly(_ connection: RedisConnection, _ commands: [RedisCommand]) async throws -> [RedisValue]? {
        guard connection.lastRoundTrip <= Self.pollWindow else { return nil }
        let until = ContinuousClock.now + Self.pollWindow
        repeat {
            await Task.yield()
            if let replies = try connection.poll(commands) { return replies }
        } while callsInFlight.load(ordering: .relaxed) == 1 && ContinuousClock.now < until
        return nil
    }

    /// A connection to use, and whether it was opened for this call.
    private func lease(_ commands: [RedisCommand]) async throws -> (RedisConnection, Bool) {
        // Named only when something fails: building the name costs more than a GET.
        func command() -> String { commands.count == 1 ? commands[0].commandName : "pipeline" }
        do {
            switch try await pool.lease(waitingAtMost: configuration.commandTimeout) {
            case .reused(let connection): return (connection, false)
            case .open: return (try await open(command()), true)
            }
        } catch ConnectionPool<RedisConnection>.Failure.timedOut {
            throw RedisError.poolExhausted(
                configuration.server, command(), connections: configuration.poolSize, waited: configuration.commandTimeout)
        } catch ConnectionPool<RedisConnection>.Failure.shutDown {
            throw RedisError.shutDown(configuration.server, command())
        }
    }

    /// Opens a connection on a queue of its own: resolving the name blocks, and so (within
    /// `REDIS_CONNECT_TIMEOUT`) do TCP, the TLS handshake, AUTH and SELECT.
    private func open(_ command: String) async throws -> RedisConnection {
        let queue = DispatchQueue(label: "redis \(configuration.server)")
        let configuration = configuration
        let tls = tls
        let reactor = reactor
        do {
            return try await queue.perform { try RedisConnection.open(configuration, tls: tls, queue: queue, reactor: reactor) }
        } catch {
            pool.openFailed()
            throw (error as? RedisError)?.forCommand(command) ?? error
        }
    }

    private func release(_ connection: RedisConnection) {
        pool.release(connection, reusable: !connection.isBroken)?.close()
    }
}

import ConnectionPool
import Dispatch
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A Redis client: a bounded pool of connections (plain or TLS), each running its blocking I/O
/// on a dispatch queue of its own, so no Swift task ever blocks. Commands and pipelines; a
/// connection that broke is closed and a new one opened on the next call (a call on a pooled
/// connection that the server had dropped, as after a restart, is tried once more on a fresh one).
/// Make one per process and call `shutdown()` when done.
public final class RedisClient: Sendable {
    public let configuration: RedisConfiguration
    private let tls: RedisTLSContext?
    private let pool: ConnectionPool<RedisConnection>
    /// Calls under way: polling for a reply pays only when nothing else is (see `pollBriefly`).
    private let callsInFlight = Atomic<Int>(0)

    /// Throws when the TLS settings cannot be used (an unreadable `REDIS_CA_FILE`); connections
    /// are opened on first use.
    public init(configuration: RedisConfiguration) throws(RedisError) {
        self.configuration = configuration
        self.tls = configuration.tls ? try RedisTLSContext(configuration: configuration) : nil
        self.pool = ConnectionPool(capacity: configuration.poolSize)
        // A write to a connection the server closed must fail with EPIPE, not kill the process
        // (OpenSSL writes with write(2), which cannot be told MSG_NOSIGNAL).
        signal(SIGPIPE, SIG_IGN)
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

    /// Closes idle connections and fails callers waiting for one; connections in use close when
    /// their call ends. Later calls fail.
    public func shutdown() async {
        for connection in pool.shutdown() { connection.queue.async { connection.close() } }
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
                // Sent from this thread (a write that cannot block), so the request travels while
                // the connection's queue wakes up to read the reply.
                connection.begin(commands)
                if let replies = try await pollBriefly(connection, commands) {
                    release(connection)
                    return replies
                }
                let timeout = configuration.commandTimeout
                let replies = try await connection.queue.perform {
                    try connection.execute(commands, deadline: .now + timeout, timeout: timeout)
                }
                release(connection)
                return replies
            } catch let error as RedisError {
                release(connection)
                // A pooled connection the server dropped while idle: nothing was run; the other
                // idle ones are as old, so they go too, and the call is tried on a new one.
                if !fresh, !retried, error.isUnavailable, !error.isTimeout {
                    retried = true
                    for stale in pool.discardIdle() { stale.queue.async { stale.close() } }
                    continue
                }
                throw error
            }
        }
    }

    /// The longest a call looks for its reply between yields of its task before it waits on the
    /// connection's queue instead.
    static let pollWindow: Duration = .microseconds(250)

    /// Looks for the reply from this task before waiting on the connection's queue, with reads
    /// that never block. Handing a reply over from the queue costs two thread wake-ups; a look
    /// costs one `recv`:
    /// - while other calls are under way, the task yields once and looks once: with other tasks
    ///   to run first, a nearby server has usually answered by then;
    /// - alone, and when the server answered the last exchange within `pollWindow` (on this host
    ///   or rack), it looks between yields for up to that long: nothing else wants the core.
    /// A server further away, or one that was slow last time, is waited for on the queue at once.
    private func pollBriefly(_ connection: RedisConnection, _ commands: [RedisCommand]) async throws -> [RedisValue]? {
        guard connection.lastRoundTrip <= Self.pollWindow else { return nil }
        let until = ContinuousClock.now + Self.pollWindow
        repeat {
            await Task.yield()
            if let replies = try connection.poll(commands, timeout: configuration.commandTimeout) { return replies }
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

    private func open(_ command: String) async throws -> RedisConnection {
        let queue = DispatchQueue(label: "redis \(configuration.server)")
        let configuration = configuration
        let tls = tls
        do {
            return try await queue.perform { try RedisConnection.open(configuration, tls: tls, queue: queue) }
        } catch {
            pool.openFailed()
            throw (error as? RedisError)?.forCommand(command) ?? error
        }
    }

    private func release(_ connection: RedisConnection) {
        if let closing = pool.release(connection, reusable: !connection.isBroken) {
            closing.queue.async { closing.close() }
        }
    }
}

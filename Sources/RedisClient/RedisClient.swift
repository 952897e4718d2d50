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
    private let pool: Mutex<PoolBox>
    private let nextID = Atomic<Int>(1)
    /// Calls under way: polling for a reply pays only when nothing else is (see `pollBriefly`).
    private let callsInFlight = Atomic<Int>(0)

    private struct PoolBox: ~Copyable {
        var state: RedisPoolState<RedisConnection>
        /// A waiter's continuation, or its outcome when it came before the continuation was stored.
        var waiting: [Int: WaitSlot] = [:]

        /// Delivers to a waiter: the continuation to resume (outside the lock), if it is stored yet.
        mutating func deliver(_ waiter: Int, _ outcome: Result<WaitOutcome, any Error>) -> CheckedContinuation<WaitOutcome, any Error>? {
            if case .waiting(let continuation) = waiting.removeValue(forKey: waiter) { return continuation }
            waiting[waiter] = .outcome(outcome)
            return nil
        }
    }

    private enum WaitSlot {
        case waiting(CheckedContinuation<WaitOutcome, any Error>)
        case outcome(Result<WaitOutcome, any Error>)
    }

    private enum WaitOutcome {
        case connection(RedisConnection)
        case open
    }

    /// Throws when the TLS settings cannot be used (an unreadable `REDIS_CA_FILE`); connections
    /// are opened on first use.
    public init(configuration: RedisConfiguration) throws(RedisError) {
        self.configuration = configuration
        self.tls = configuration.tls ? try RedisTLSContext(configuration: configuration) : nil
        self.pool = Mutex(PoolBox(state: RedisPoolState(capacity: configuration.poolSize)))
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
        let error = RedisError.shutDown(configuration.server, "waiting for a connection")
        let (idle, waiters) = pool.withLock { box in
            let (idle, waiters) = box.state.shutDown()
            return (idle, waiters.compactMap { box.deliver($0, .failure(error)) })
        }
        for waiter in waiters { waiter.resume(throwing: error) }
        for connection in idle { connection.queue.async { connection.close() } }
    }

    /// Connections open now (idle, lent out or being opened).
    public var openConnections: Int { pool.withLock { $0.state.open } }

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
                let replies = try await blocking(on: connection) { connection in
                    try connection.execute(
                        commands, deadline: .now + self.configuration.commandTimeout, timeout: self.configuration.commandTimeout)
                }
                release(connection)
                return replies
            } catch let error as RedisError {
                release(connection)
                // A pooled connection the server dropped while idle: nothing was run; the other
                // idle ones are as old, so they go too, and the call is tried on a new one.
                if !fresh, !retried, error.isUnavailable, !error.isTimeout {
                    retried = true
                    for stale in pool.withLock({ $0.state.discardIdle() }) { stale.queue.async { stale.close() } }
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
        let id = nextID.add(1, ordering: .relaxed).oldValue
        let action = pool.withLock { $0.state.lease(waiter: id) }
        switch action {
        case .use(let connection): return (connection, false)
        case .open: return (try await open(command()), true)
        case .shutDown: throw RedisError.shutDown(configuration.server, command())
        case .wait:
            switch try await wait(id, command()) {
            case .connection(let connection): return (connection, false)
            case .open: return (try await open(command()), true)
            }
        }
    }

    private func wait(_ id: Int, _ command: String) async throws -> WaitOutcome {
        let timeout = configuration.commandTimeout
        let server = configuration.server
        let capacity = configuration.poolSize
        // The timer fails the wait unless a connection came first.
        let timer = Task { [weak self] in
            try await Task.sleep(for: timeout)
            self?.abandon(id, RedisError.poolExhausted(server, command, connections: capacity, waited: timeout))
        }
        defer { timer.cancel() }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                let early = pool.withLock { box -> Result<WaitOutcome, any Error>? in
                    // Served or given up before the continuation existed.
                    if case .outcome(let outcome) = box.waiting.removeValue(forKey: id) { return outcome }
                    box.waiting[id] = .waiting(continuation)
                    return nil
                }
                if let early { continuation.resume(with: early) }
            }
        } onCancel: {
            abandon(id, CancellationError())
        }
    }

    private func abandon(_ id: Int, _ error: any Error) {
        let continuation = pool.withLock { box in
            box.state.abandon(waiter: id) ? box.deliver(id, .failure(error)) : nil
        }
        continuation?.resume(throwing: error)
    }

    private func open(_ command: String) async throws -> RedisConnection {
        let queue = DispatchQueue(label: "redis \(configuration.server)")
        let configuration = configuration
        let tls = tls
        do {
            return try await withCheckedThrowingContinuation { continuation in
                queue.async {
                    do {
                        continuation.resume(returning: try RedisConnection.open(configuration, tls: tls, queue: queue))
                    } catch {
                        continuation.resume(throwing: error)
                    }
                }
            }
        } catch {
            settle(pool.withLock { $0.state.openFailed() }, connection: nil)
            throw (error as? RedisError)?.forCommand(command) ?? error
        }
    }

    private func release(_ connection: RedisConnection) {
        settle(pool.withLock { $0.state.release(connection, reusable: !connection.isBroken) }, connection: connection)
    }

    private func settle(_ action: RedisPoolState<RedisConnection>.ReleaseAction, connection: RedisConnection?) {
        switch action {
        case .keep:
            break
        case .handOver(let waiter, let connection):
            resume(waiter, .connection(connection))
        case .openFor(let waiter):
            if let connection { connection.queue.async { connection.close() } }
            resume(waiter, .open)
        case .close:
            if let connection { connection.queue.async { connection.close() } }
        }
    }

    private func resume(_ waiter: Int, _ outcome: WaitOutcome) {
        pool.withLock { $0.deliver(waiter, .success(outcome)) }?.resume(returning: outcome)
    }

    private func blocking<T: Sendable>(
        on connection: RedisConnection, _ body: @escaping @Sendable (RedisConnection) throws -> T
    ) async throws -> T {
        // Resumed exactly once below, on every path: the unchecked kind saves an allocation per call.
        try await withUnsafeThrowingContinuation { continuation in
            connection.queue.async {
                do {
                    continuation.resume(returning: try body(connection))
                } catch {
                    continuation.resume(throwing: error)
                }
            }
        }
    }
}

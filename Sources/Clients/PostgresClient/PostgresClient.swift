import ConnectionPool
import Dispatch
import Synchronization

/// A PostgreSQL client on libpq: a bounded pool of connections, each running libpq's blocking
/// calls on a dispatch queue of its own (no Swift task ever blocks), and one reactor thread that
/// waits for the results of statements on all of them; parameterized statements
/// only, prepared once per connection; rows decoded by column name with errors that name the
/// column; transactions; a dropped connection (a server restart) is noticed before use and
/// replaced. Make one per process and call `shutdown()` when done.
public final class PostgresClient: Sendable {
    public let configuration: PostgresConfiguration
    private let pool: ConnectionPool<PostgresConnection>
    /// Statements under way: looking for a result between yields only pays while nothing else is.
    private let callsInFlight = Atomic<Int>(0)
    /// Waits for results on every connection's socket (nil when the kernel refused an epoll set or
    /// a thread: then each connection's queue waits). Ends at `shutdown()` or with the client.
    private let reactor: ReadinessReactor?

    public init(configuration: PostgresConfiguration) throws(PostgresError) {
        try configuration.validate()
        self.configuration = configuration
        self.pool = ConnectionPool(capacity: configuration.poolSize)
        self.reactor = try? ReadinessReactor()
    }

    deinit {
        reactor?.shutdown()
    }

    /// The client's own thread, the one that waits for every connection's results, as an executor.
    /// A task that mostly talks to the database (statement after statement, little else) runs
    /// fastest there: a reply resumes it on the thread that saw the reply arrive, with no hand-over
    /// to another thread. `Task(executorPreference: db.executor)`, or
    /// `withTaskExecutorPreference(db.executor)`. Heavy computation belongs elsewhere: while it runs,
    /// the replies of other connections wait. Nil when the kernel refused the thread.
    public var executor: (any TaskExecutor)? { reactor }

    /// Runs one statement with its parameters (`$1`, `$2`, …) and returns its rows. Text holding
    /// a NUL character is refused before anything is sent (libpq would cut it there).
    @discardableResult
    public func query(_ sql: String, _ parameters: [any PostgresBindable] = []) async throws -> PostgresRows {
        let values = try PostgresParameters.texts(parameters, server: configuration.server, sql: sql)
        callsInFlight.add(1, ordering: .relaxed)
        defer { callsInFlight.subtract(1, ordering: .relaxed) }
        return try await lend(sql) { connection in try await self.run(sql, values, on: connection) }
    }

    /// The longest a statement's result is looked for between yields before it is waited for.
    static let pollWindow: Duration = .microseconds(250)

    /// Sends from this task (a send that cannot block), then waits for the result. When this is
    /// the only statement under way and the server answered the last one within `pollWindow`, it
    /// looks for the result between `Task.yield()`s for up to that long: on one connection a look
    /// (one `recv`) is cheaper than any hand-over between threads. Otherwise the reactor wakes it
    /// when the socket has something (one thread waits for all connections, so results that come
    /// together cost one wake-up); a connection without the reactor, or with part of its statement
    /// still to send, waits on its own queue.
    func run(_ sql: String, _ values: [String?], on connection: PostgresConnection) async throws -> PostgresRows {
        if !connection.isPrepared(sql) {
            try await blocking(connection) { try $0.prepare(sql, parameterCount: values.count) }
        }
        connection.start(sql, values)
        var looked = false
        if connection.lastRoundTrip <= Self.pollWindow && callsInFlight.load(ordering: .relaxed) <= 1 {
            let until = ContinuousClock.now + Self.pollWindow
            looked = true
            repeat {
                await Task.yield()
                if let rows = try connection.poll() { return rows }
            } while callsInFlight.load(ordering: .relaxed) <= 1 && ContinuousClock.now < until
        }
        if let (reactor, socket) = connection.watch, connection.awaitsResultOnly {
            waiting: while true {
                switch await reactor.readable(socket, until: connection.resultDeadline, recheck: looked) {
                case .readable:
                    if let rows = try connection.poll() { return rows }
                    looked = true
                case .timedOut: return try connection.abandonLate()
                case .closed: break waiting
                }
            }
        }
        return try await blocking(connection) { try $0.finish() }
    }

    /// Runs `body` in a transaction on one connection: committed when it returns, rolled back when
    /// it throws (the error is rethrown).
    public func withTransaction<T: Sendable>(_ body: @Sendable (PostgresTransaction) async throws -> T) async throws -> T {
        try await lend("BEGIN") { connection in
            try await self.blocking(connection) { try $0.execute("BEGIN") }
            let transaction = PostgresTransaction(client: self, connection: connection)
            do {
                let result = try await body(transaction)
                try await self.blocking(connection) { try $0.execute("COMMIT") }
                return result
            } catch {
                try? await self.blocking(connection) { try $0.execute("ROLLBACK") }
                throw error
            }
        }
    }

    /// Fails callers waiting for a connection and drops idle ones; connections in use close when
    /// their call ends.
    public func shutdown() async {
        for connection in pool.shutdown() { connection.close() }
        reactor?.shutdown()
    }

    /// Connections open now.
    public var openConnections: Int { pool.openCount }

    // MARK: Connections

    func withConnection<T: Sendable>(
        _ sql: String, _ body: @escaping @Sendable (PostgresConnection) throws -> T
    ) async throws -> T {
        try await lend(sql) { connection in try await self.blocking(connection, body) }
    }

    /// Lends a live connection to `body` and takes it back (closing it if it broke, or if a
    /// transaction was left open on it).
    private func lend<T: Sendable>(_ sql: String, _ body: (PostgresConnection) async throws -> T) async throws -> T {
        let connection = try await lease(sql)
        do {
            let result = try await body(connection)
            release(connection)
            return result
        } catch {
            release(connection)
            throw error
        }
    }

    private func release(_ connection: PostgresConnection) {
        let reusable = !connection.isBroken && !connection.isInTransaction
        pool.release(connection, reusable: reusable)?.close()
    }

    /// `sql` names the statement in errors (by its first words, worked out only then).
    private func lease(_ sql: String) async throws -> PostgresConnection {
        while true {
            let lease: ConnectionPool<PostgresConnection>.Lease
            do {
                lease = try await pool.lease(waitingAtMost: configuration.statementTimeout)
            } catch ConnectionPool<PostgresConnection>.Failure.timedOut {
                throw PostgresError.poolExhausted(
                    configuration.server, PostgresConnection.describe(sql), connections: configuration.poolSize,
                    waited: configuration.statementTimeout)
            } catch ConnectionPool<PostgresConnection>.Failure.shutDown {
                throw PostgresError.shutDown(configuration.server, PostgresConnection.describe(sql))
            }
            switch lease {
            case .open:
                return try await open()
            case .reused(let connection):
                // A connection the server dropped while it sat idle (a restart) is replaced, and
                // the ones idle beside it are as old: they go too.
                if connection.isAliveWhenIdle() { return connection }
                release(connection)
                for stale in pool.discardIdle() { stale.close() }
            }
        }
    }

    /// Opens a connection on a queue of its own. Cancelling the calling task ends the wait for the
    /// server within moments (a worker stopping while the database does not answer) and throws
    /// `CancellationError`.
    private func open() async throws -> PostgresConnection {
        let queue = DispatchQueue(label: "postgres \(configuration.server)")
        let configuration = configuration
        let reactor = reactor
        let cancellation = ConnectCancellation()
        do {
            return try await withTaskCancellationHandler {
                try await queue.perform {
                    try PostgresConnection.open(configuration, queue: queue, reactor: reactor, cancellation: cancellation)
                }
            } onCancel: {
                cancellation.cancel()
            }
        } catch {
            pool.openFailed()
            if cancellation.isCancelled { throw CancellationError() }
            throw error
        }
    }

    func blocking<T: Sendable>(_ connection: PostgresConnection, _ body: @escaping @Sendable (PostgresConnection) throws -> T) async throws -> T {
        try await connection.queue.perform { try body(connection) }
    }
}

/// The statements of one transaction, all on its connection.
public struct PostgresTransaction: Sendable {
    let client: PostgresClient
    let connection: PostgresConnection

    @discardableResult
    public func query(_ sql: String, _ parameters: [any PostgresBindable] = []) async throws -> PostgresRows {
        let values = try PostgresParameters.texts(parameters, server: client.configuration.server, sql: sql)
        return try await client.run(sql, values, on: connection)
    }
}

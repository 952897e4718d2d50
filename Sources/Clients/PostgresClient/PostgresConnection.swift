import CLibPQ
import ConnectionPool
import Dispatch
#if canImport(Glibc)
import Glibc
#endif

/// One libpq connection. libpq's blocking calls run only on the connection's own dispatch queue
/// (`queue`), never on Swift's cooperative pool; a statement is sent without blocking and its
/// result read when the client's reactor says the socket has something. The pool lends the
/// connection to one caller at a time. Statements are prepared once per connection and run by name after.
package final class PostgresConnection: @unchecked Sendable {
    private let connection: OpaquePointer
    private let server: String
    package let queue: DispatchQueue
    private var prepared: [String: String] = [:]
    /// Set once the connection is unusable; the pool then closes it.
    package private(set) var isBroken = false

    /// How long `finish` waits for a result: the server's statement timeout, plus time for the
    /// cancellation to arrive.
    private let resultTimeout: Duration
    /// The round trip of the last statement run through `start` (zero before the first).
    package private(set) var lastRoundTrip: Duration = .zero
    private var started: ContinuousClock.Instant = .now
    /// The statement started and not yet collected (its SQL, described only for an error).
    private var pending: (sql: String, error: PostgresError?)?

    /// The reactor that waits for this connection's results, and its socket there; nil when the
    /// reactor did not take the socket (then `finish` on `queue` waits).
    package let watch: (reactor: ReadinessReactor, socket: ReadinessReactor.Socket)?

    private init(_ connection: OpaquePointer, server: String, queue: DispatchQueue, timeout: Duration, reactor: ReadinessReactor?) {
        self.connection = connection
        self.server = server
        self.queue = queue
        self.resultTimeout = timeout + .seconds(10)
        self.watch = reactor.flatMap { reactor in reactor.add(PQsocket(connection)).map { (reactor, $0) } }
    }

    deinit {
        if let watch { watch.reactor.remove(watch.socket) }
        PQfinish(connection)
    }

    /// Connects (TLS as `sslmode` says), with TCP keep-alives so that a vanished server is noticed,
    /// and the statement timeout set. Blocking: call it on `queue`; `cancellation` ends the wait
    /// for the server (`PostgresConnect`). A refused connection (password, role, database) is
    /// `PostgresError.isRefused`, one that could not be made `isUnavailable`.
    package static func open(
        _ configuration: PostgresConfiguration, queue: DispatchQueue, reactor: ReadinessReactor? = nil,
        cancellation: ConnectCancellation? = nil
    ) throws(PostgresError) -> PostgresConnection {
        let milliseconds = max(1, configuration.statementTimeout.components.seconds * 1000
            + configuration.statementTimeout.components.attoseconds / 1_000_000_000_000_000)
        let seconds = max(1, configuration.connectTimeout.components.seconds)
        let settings: [(String, String)] = [
            ("dbname", configuration.url), ("connect_timeout", String(seconds)), ("application_name", configuration.applicationName),
            ("options", "-c statement_timeout=\(milliseconds)"), ("keepalives", "1"), ("keepalives_idle", "10"),
            ("keepalives_interval", "5"), ("keepalives_count", "3"), ("tcp_user_timeout", String(milliseconds + 5000)),
        ]
        let connection = try PostgresConnect.connect(settings, configuration, cancellation: cancellation)
        // Sends never block (`start`); results are read as they come (`poll`, `finish`).
        // libpq's blocking calls (PQprepare, PQexec) still wait, as its manual says.
        PQsetnonblocking(connection, 1)
        return PostgresConnection(
            connection, server: configuration.server, queue: queue, timeout: configuration.statementTimeout, reactor: reactor)
    }

    /// Whether an idle connection is still good: the server sends a message before it closes a
    /// connection (a restart, an administrator), so anything to read while idle means trouble.
    /// Never waits: any thread may ask, while no call runs.
    package func isAliveWhenIdle() -> Bool {
        guard !isBroken, PQstatus(connection) == CONNECTION_OK else { return false }
        // The reactor saw every arrival: nothing came, nothing to look at.
        if let watch, !watch.socket.takeArrivals() { return true }
        var entry = pollfd(fd: PQsocket(connection), events: Int16(POLLIN), revents: 0)
        guard Glibc.poll(&entry, 1, 0) > 0 else { return true }
        if PQconsumeInput(connection) == 0 || PQstatus(connection) != CONNECTION_OK {
            isBroken = true
            return false
        }
        return true
    }

    /// Whether `sql` was prepared on this connection already.
    package func isPrepared(_ sql: String) -> Bool { prepared[sql] != nil }

    /// Prepares `sql` (blocking: on `queue`).
    package func prepare(_ sql: String, parameterCount: Int) throws(PostgresError) {
        guard prepared[sql] == nil else { return }
        let name = "s\(prepared.count + 1)"
        let result = PQprepare(connection, name, sql, Int32(parameterCount), nil)
        defer { PQclear(result) }
        try check(result, Self.describe(sql), expecting: PGRES_COMMAND_OK)
        prepared[sql] = name
    }

    /// Sends a prepared statement without waiting (any thread; the socket is non-blocking):
    /// the statement travels while the caller decides how to wait. Then `poll` or `finish`.
    package func start(_ sql: String, _ parameters: [String?]) {
        pending = (sql, nil)
        started = .now
        guard !isBroken, let name = prepared[sql] else {
            pending?.error = .connectionLost(server, Self.describe(sql), "the connection broke earlier")
            return
        }
        let sent = withOptionalCStrings(parameters) { values in
            PQsendQueryPrepared(connection, name, Int32(parameters.count), values, nil, nil, 0)
        }
        if sent != 1 {
            isBroken = true
            pending?.error = .connectionLost(server, Self.describe(sql), String(cString: PQerrorMessage(connection)).trimmingNewlines)
        }
    }

    /// The started statement's rows if they are in, without waiting; nil while they are not.
    package func poll() throws(PostgresError) -> PostgresRows? {
        guard let pending else { return PostgresRows(columns: [], values: [], affectedRows: 0, sql: "") }
        if let error = pending.error { return try fail(error) }
        // PQflush sends what did not fit; PQconsumeInput reads what arrived; neither waits.
        if PQflush(connection) < 0 || PQconsumeInput(connection) == 0 {
            isBroken = true
            return try fail(.connectionLost(server, Self.describe(pending.sql), String(cString: PQerrorMessage(connection)).trimmingNewlines))
        }
        guard PQisBusy(connection) == 0 else { return nil }
        return try collect(pending.sql)
    }

    /// Waits (on `queue`) for the started statement's rows.
    package func finish() throws(PostgresError) -> PostgresRows {
        let deadline = ContinuousClock.now + resultTimeout
        while true {
            if let rows = try poll() { return rows }
            let remaining = deadline - .now
            guard remaining > .zero else { return try abandonLate() }
            let milliseconds = Int32(clamping: remaining.components.seconds * 1000 + remaining.components.attoseconds / 1_000_000_000_000_000 + 1)
            let wantsWrite = PQflush(connection) == 1
            var entry = pollfd(fd: PQsocket(connection), events: Int16(POLLIN) | (wantsWrite ? Int16(POLLOUT) : 0), revents: 0)
            _ = Glibc.poll(&entry, 1, milliseconds)
        }
    }

    /// When a result waited for through the reactor is late enough to give up on.
    package var resultDeadline: ContinuousClock.Instant { started + resultTimeout }

    /// Whether the started statement is on its way and only its result is to be waited for: not
    /// when sending failed (the error is reported at once) or part of it is still to be sent (the
    /// reactor only waits to read).
    package var awaitsResultOnly: Bool { pending != nil && pending?.error == nil && PQflush(connection) == 0 }

    /// Gives up on the started statement: no result by `resultDeadline`.
    package func abandonLate() throws(PostgresError) -> PostgresRows {
        isBroken = true
        return try fail(.connectionLost(server, Self.describe(pending?.sql ?? ""), "no result within \(resultTimeout)"))
    }

    private func fail(_ error: PostgresError) throws(PostgresError) -> PostgresRows {
        pending = nil
        throw error
    }

    /// Reads every result of the finished statement (libpq ends them with NULL).
    private func collect(_ sql: String) throws(PostgresError) -> PostgresRows {
        var rows: PostgresRows?
        var failure: PostgresError?
        while let result = PQgetResult(connection) {
            defer { PQclear(result) }
            guard failure == nil else { continue }
            do {
                rows = try self.rows(result, sql)
            } catch {
                failure = error
            }
        }
        pending = nil
        lastRoundTrip = .now - started
        if let failure { throw failure }
        return rows ?? PostgresRows(columns: [], values: [], affectedRows: 0, sql: sql)
    }

    /// Runs `sql` with `parameters` (text format), prepared on first use. Blocking: on `queue`.
    package func query(_ sql: String, _ parameters: [String?]) throws(PostgresError) -> PostgresRows {
        try PostgresParameters.check(parameters, server: server, sql: sql)
        try prepare(sql, parameterCount: parameters.count)
        start(sql, parameters)
        return try finish()
    }

    /// Runs SQL text without parameters (several statements allowed): migrations and
    /// transaction control. Blocking: on `queue`.
    package func execute(_ sql: String) throws(PostgresError) {
        let result = PQexec(connection, sql)
        defer { PQclear(result) }
        let status = PQresultStatus(result)
        if status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK { try check(result, Self.describe(sql), expecting: PGRES_COMMAND_OK) }
    }

    /// Whether a transaction is open or failed on this connection (it must not go back to the
    /// pool like that).
    package var isInTransaction: Bool {
        let status = PQtransactionStatus(connection)
        return status == PQTRANS_INTRANS || status == PQTRANS_INERROR || status == PQTRANS_ACTIVE
    }

    private func rows(_ result: OpaquePointer?, _ sql: String) throws(PostgresError) -> PostgresRows {
        let status = PQresultStatus(result)
        guard status == PGRES_TUPLES_OK || status == PGRES_COMMAND_OK else {
            try check(result, Self.describe(sql), expecting: PGRES_TUPLES_OK)
            return PostgresRows(columns: [], values: [], affectedRows: 0, sql: sql)
        }
        let columnCount = Int(PQnfields(result))
        let rowCount = Int(PQntuples(result))
        let columns = (0..<columnCount).map { String(cString: PQfname(result, Int32($0))) }
        var values: [[String?]] = []
        values.reserveCapacity(rowCount)
        for row in 0..<rowCount {
            var fields: [String?] = []
            fields.reserveCapacity(columnCount)
            for column in 0..<columnCount {
                if PQgetisnull(result, Int32(row), Int32(column)) == 1 {
                    fields.append(nil)
                } else {
                    let length = Int(PQgetlength(result, Int32(row), Int32(column)))
                    let pointer = PQgetvalue(result, Int32(row), Int32(column))!
                    fields.append(pointer.withMemoryRebound(to: UInt8.self, capacity: length) {
                        String(decoding: UnsafeBufferPointer(start: $0, count: length), as: UTF8.self)
                    })
                }
            }
            values.append(fields)
        }
        let affected = Int(String(cString: PQcmdTuples(result))) ?? 0
        return PostgresRows(columns: columns, values: values, affectedRows: affected, sql: sql)
    }

    private func check(_ result: OpaquePointer?, _ statement: String, expecting: ExecStatusType) throws(PostgresError) {
        let status = PQresultStatus(result)
        guard status != expecting else { return }
        if PQstatus(connection) != CONNECTION_OK || result == nil {
            isBroken = true
            throw .connectionLost(server, statement, String(cString: PQerrorMessage(connection)).trimmingNewlines)
        }
        let state = PQresultErrorField(result, Int32(UInt8(ascii: "C"))).map { String(cString: $0) } ?? "?????"
        let message = PQresultErrorField(result, Int32(UInt8(ascii: "M"))).map { String(cString: $0) }
            ?? String(cString: PQresultErrorMessage(result)).trimmingNewlines
        throw .server(server, statement, sqlState: state, message)
    }

    /// Marks the connection done: the pool drops it, and libpq's handle (and socket) is freed
    /// when the last reference goes.
    package func close() {
        isBroken = true
    }

    /// A statement's first words, for errors (never its parameters).
    static func describe(_ sql: String) -> String {
        let words = sql.split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "\t" }).prefix(4).joined(separator: " ")
        return words.count > 60 ? String(words.prefix(60)) + "…" : words
    }
}

/// Runs `body` with the strings as C strings (nil stays NULL); the pointers live as long as `body`.
private func withOptionalCStrings<R>(_ strings: [String?], _ body: (UnsafePointer<UnsafePointer<CChar>?>) -> R) -> R {
    var storage: [UInt8] = []
    var offsets: [Int?] = []
    for string in strings {
        guard let string else {
            offsets.append(nil)
            continue
        }
        offsets.append(storage.count)
        storage.append(contentsOf: string.utf8)
        storage.append(0)
    }
    if storage.isEmpty { storage.append(0) }
    return storage.withUnsafeBufferPointer { buffer in
        let base = UnsafeRawPointer(buffer.baseAddress!)
        let pointers: [UnsafePointer<CChar>?] = offsets.map { $0.map { (base + $0).assumingMemoryBound(to: CChar.self) } }
        return pointers.withUnsafeBufferPointer { body($0.baseAddress ?? UnsafePointer(bitPattern: 8)!) }
    }
}

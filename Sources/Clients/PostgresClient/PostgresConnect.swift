import CLibPQ
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Set when the task waiting for a new connection is cancelled (the worker stops while the
/// server does not answer): the attempt ends within `PostgresConnect.slice`.
package final class ConnectCancellation: Sendable {
    private let flag = Atomic<Bool>(false)

    package init() {}

    package func cancel() { flag.store(true, ordering: .relaxed) }
    package var isCancelled: Bool { flag.load(ordering: .relaxed) }
}

/// Opening a libpq connection without blocking on the server: `PQconnectStartParams`, then
/// `PQconnectPoll` whenever the socket is ready, waiting in slices so that a cancellation ends the
/// attempt at once. libpq's own `connect_timeout` applies only to its blocking call, so the
/// timeout is kept here, per address tried (a new socket restarts it, as libpq restarts its timer
/// per host and address). The error text is asked for in libpq's verbose form, which carries the
/// server's SQLSTATE: how a refused connection (a wrong password, role or database: SQLSTATE
/// 28xxx, 3D000, 42501) is told apart from a server that cannot be reached.
enum PostgresConnect {
    /// How long one wait for the socket lasts (milliseconds) before cancellation is looked at again.
    static let slice: Int64 = 50

    /// A connection in `CONNECTION_OK`, with libpq's default error verbosity. Blocking (for up to
    /// the connect timeout per address tried, or until cancelled): call it on the connection's queue.
    static func connect(
        _ settings: [(String, String)], _ configuration: PostgresConfiguration, cancellation: ConnectCancellation?
    ) throws(PostgresError) -> OpaquePointer {
        let server = configuration.server
        guard let connection = start(settings) else { throw .connect(server, "libpq could not allocate a connection") }
        guard PQstatus(connection) != CONNECTION_BAD else {
            let error = failure(connection, configuration)
            PQfinish(connection)
            throw error
        }
        _ = PQsetErrorVerbosity(connection, PQERRORS_VERBOSE)
        let timeout = Duration.seconds(max(1, configuration.connectTimeout.components.seconds))
        var descriptor: Int32 = -1
        var attemptDeadline = ContinuousClock.now + timeout
        // Before the first PQconnectPoll, libpq's manual says to wait as if it had asked to write.
        var status = PGRES_POLLING_WRITING
        while status != PGRES_POLLING_OK {
            if status == PGRES_POLLING_FAILED {
                let error = failure(connection, configuration)
                PQfinish(connection)
                throw error
            }
            let current = PQsocket(connection)
            if current != descriptor {
                // Another address or host: a timeout of its own.
                descriptor = current
                attemptDeadline = .now + timeout
            }
            switch wait(descriptor, forWriting: status == PGRES_POLLING_WRITING, until: attemptDeadline, cancellation: cancellation) {
            case .ready:
                break
            case .timedOut:
                PQfinish(connection)
                throw .connect(server, "no connection within \(timeout) (DATABASE_CONNECT_TIMEOUT)")
            case .cancelled:
                PQfinish(connection)
                throw .connect(server, "the connection attempt was cancelled")
            }
            status = PQconnectPoll(connection)
        }
        _ = PQsetErrorVerbosity(connection, PQERRORS_DEFAULT)
        return connection
    }

    /// The error of a failed attempt: refused (the configuration is wrong: not worth trying
    /// again) or a connection failure (the server is down or unreachable: worth waiting out).
    /// Never shows the password.
    static func failure(_ connection: OpaquePointer, _ configuration: PostgresConfiguration) -> PostgresError {
        let (reason, states) = parse(String(cString: PQerrorMessage(connection)))
        let shown = configuration.hidingPassword(reason)
        if let state = states.last(where: { isRefusal($0) }) { return .refused(configuration.server, sqlState: state, shown) }
        // The server asked for a password and DATABASE_URL gave none ("fe_sendauth: no password supplied").
        if PQconnectionNeedsPassword(connection) == 1 { return .refused(configuration.server, sqlState: nil, shown) }
        return .connect(configuration.server, shown)
    }

    /// SQLSTATEs that mean the server refused this client: invalid authorization (class 28: a
    /// wrong password, a role that does not exist or may not log in, no pg_hba.conf entry), no
    /// such database (3D000), no right to connect to it (42501). Others (too many connections,
    /// 53300; the server starting or stopping, 57P0x) are outages.
    static func isRefusal(_ state: String) -> Bool {
        state.hasPrefix("28") || state == "3D000" || state == "42501"
    }

    /// libpq's verbose error text without its source locations (`LOCATION:` lines), and the
    /// SQLSTATEs in it (after each severity, `FATAL:  3D000: database "x" does not exist`), taken
    /// out of the text.
    static func parse(_ message: String) -> (reason: String, sqlStates: [String]) {
        var states: [String] = []
        var lines: [String] = []
        for line in message.split(separator: "\n") where !line.hasPrefix("LOCATION:") {
            let bytes = Array(line.utf8)
            var kept = bytes
            var index = 0
            // ":  " + five of [0-9A-Z] + ": "
            while index + 10 <= bytes.count {
                if bytes[index] == UInt8(ascii: ":"), bytes[index + 1] == UInt8(ascii: " "), bytes[index + 2] == UInt8(ascii: " "),
                    bytes[(index + 3)..<(index + 8)].allSatisfy({ isStateByte($0) }),
                    bytes[index + 8] == UInt8(ascii: ":"), bytes[index + 9] == UInt8(ascii: " ")
                {
                    states.append(String(decoding: bytes[(index + 3)..<(index + 8)], as: UTF8.self))
                    kept = Array(bytes[..<(index + 3)]) + Array(bytes[(index + 10)...])
                    break
                }
                index += 1
            }
            lines.append(String(decoding: kept, as: UTF8.self))
        }
        return (lines.joined(separator: "\n").trimmingNewlines, states)
    }

    private static func isStateByte(_ byte: UInt8) -> Bool {
        (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A)
    }

    private enum Wait {
        case ready
        case timedOut
        case cancelled
    }

    /// Waits until the socket is ready (or in error, for libpq to read), the deadline passes or
    /// the attempt is cancelled, looking at cancellation every `slice`.
    private static func wait(
        _ descriptor: Int32, forWriting: Bool, until deadline: ContinuousClock.Instant, cancellation: ConnectCancellation?
    ) -> Wait {
        guard descriptor >= 0 else { return .ready }
        while true {
            if cancellation?.isCancelled == true { return .cancelled }
            let left = deadline - .now
            guard left > .zero else { return .timedOut }
            let milliseconds = left.components.seconds * 1000 + left.components.attoseconds / 1_000_000_000_000_000 + 1
            var entry = pollfd(fd: descriptor, events: Int16(forWriting ? POLLOUT : POLLIN), revents: 0)
            let ready = Glibc.poll(&entry, 1, Int32(min(slice, milliseconds)))
            if ready > 0 { return .ready }
            if ready < 0 && errno != EINTR { return .ready }
        }
    }

    /// Starts the connection with `settings` as keyword and value arrays.
    private static func start(_ settings: [(String, String)]) -> OpaquePointer? {
        let keywords: [UnsafeMutablePointer<CChar>?] = settings.map { strdup($0.0) }
        let values: [UnsafeMutablePointer<CChar>?] = settings.map { strdup($0.1) }
        defer {
            for pointer in keywords { free(pointer) }
            for pointer in values { free(pointer) }
        }
        var keywordList: [UnsafePointer<CChar>?] = keywords.map { pointer in pointer.map { UnsafePointer($0) } }
        var valueList: [UnsafePointer<CChar>?] = values.map { pointer in pointer.map { UnsafePointer($0) } }
        keywordList.append(nil)
        valueList.append(nil)
        // expand_dbname = 1: the first dbname (the URL) is read as a whole connection string.
        return PQconnectStartParams(keywordList, valueList, 1)
    }
}

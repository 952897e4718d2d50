/// A failed PostgreSQL call: names the server, the statement and what went wrong; a server
/// error carries its SQLSTATE.
public struct PostgresError: Error, CustomStringConvertible, Sendable {
    private enum Code: Sendable, Equatable {
        case configuration
        case connect
        case refused(sqlState: String?)
        case server(sqlState: String)
        case timeout
        case connectionLost
        case decode
        case poolExhausted
        case shutDown
        case migration
        case parameter(position: Int)
    }

    private let code: Code
    /// `host:port/database`.
    public let server: String
    /// The statement's first words (never its parameters).
    public let statement: String
    public let reason: String

    private init(_ code: Code, server: String, statement: String, reason: String) {
        self.code = code
        self.server = server
        self.statement = statement
        self.reason = reason
    }

    static func configuration(_ reason: String) -> Self { Self(.configuration, server: "", statement: "", reason: reason) }
    static func connect(_ server: String, _ reason: String) -> Self { Self(.connect, server: server, statement: "connect", reason: reason) }
    /// The server refused this client at connection (authentication failed, no such role or
    /// database, no right to connect: `sqlState`; nil when libpq had no password to send): the
    /// configuration is wrong, and trying again cannot help.
    static func refused(_ server: String, sqlState: String?, _ reason: String) -> Self {
        Self(.refused(sqlState: sqlState), server: server, statement: "connect", reason: reason)
    }
    static func server(_ server: String, _ statement: String, sqlState: String, _ reason: String) -> Self {
        // 57014 query_canceled: what statement_timeout raises.
        Self(sqlState == "57014" ? .timeout : .server(sqlState: sqlState), server: server, statement: statement, reason: reason)
    }
    static func connectionLost(_ server: String, _ statement: String, _ reason: String) -> Self {
        Self(.connectionLost, server: server, statement: statement, reason: reason)
    }
    static func decode(_ statement: String, _ reason: String) -> Self { Self(.decode, server: "", statement: statement, reason: reason) }
    static func poolExhausted(_ server: String, _ statement: String, connections: Int, waited: Duration) -> Self {
        Self(.poolExhausted, server: server, statement: statement, reason: "all \(connections) connections stayed busy for \(waited)")
    }
    static func shutDown(_ server: String, _ statement: String) -> Self {
        Self(.shutDown, server: server, statement: statement, reason: "the PostgreSQL client was shut down")
    }
    static func migration(_ server: String, _ name: String, _ reason: String) -> Self {
        Self(.migration, server: server, statement: "migration \(name)", reason: reason)
    }
    /// A parameter refused before anything was sent: text holding a NUL character, which libpq
    /// (C strings) would silently cut there, so `"L1\0anything"` would have matched `"L1"`.
    static func nulInParameter(_ server: String, _ statement: String, position: Int) -> Self {
        Self(
            .parameter(position: position), server: server, statement: statement,
            reason: "parameter $\(position) contains a NUL character (U+0000), which PostgreSQL text cannot hold "
                + "(libpq would cut the value there); remove it, or send the bytes as bytea ([UInt8])")
    }

    /// The server's SQLSTATE (`23505` for a unique violation, …) when the server refused.
    public var sqlState: String? {
        if case .server(let state) = code { return state }
        if case .refused(let state) = code { return state }
        return code == .timeout ? "57014" : nil
    }

    /// The server could not be reached or the connection broke: worth trying again later.
    public var isUnavailable: Bool { [.connect, .connectionLost, .poolExhausted].contains(code) }
    public var isTimeout: Bool { code == .timeout }
    /// The server refused the connection for a reason of the configuration (the password, the
    /// role, the database, the right to connect): not an outage, so not worth waiting out.
    public var isRefused: Bool {
        if case .refused = code { return true }
        return false
    }
    /// The position (`$1` is 1) of the parameter refused before the statement was sent.
    public var parameterPosition: Int? {
        if case .parameter(let position) = code { return position }
        return nil
    }

    public var description: String {
        let hint: String
        switch code {
        case .configuration: return reason
        case .decode: return "PostgreSQL \(statement): \(reason)"
        case .parameter: return "PostgreSQL \(server) \(statement) was not sent: \(reason)"
        case .connect, .connectionLost: hint = " (check DATABASE_URL, and that the server runs and accepts this client)"
        case .timeout: hint = " (DATABASE_STATEMENT_TIMEOUT sets the limit)"
        case .poolExhausted: hint = " (raise DATABASE_POOL_SIZE, or look for slow statements)"
        case .server(let state): hint = " (SQLSTATE \(state))"
        case .refused(let state): hint = Self.refusalHint(state)
        case .shutDown, .migration: hint = ""
        }
        return "PostgreSQL \(server) \(statement) failed: \(reason)\(hint)"
    }

    /// What to check in `DATABASE_URL` for a refused connection.
    private static func refusalHint(_ state: String?) -> String {
        let advice: String
        switch state {
        case "28P01"?: advice = "check the user name and password in DATABASE_URL"
        case "3D000"?: advice = "check the database name in DATABASE_URL: it must exist on the server"
        case "42501"?: advice = "the role may not connect to this database: grant it CONNECT, or use another role"
        case nil: advice = "the server asks for a password and DATABASE_URL has none"
        case let other? where other.hasPrefix("28"):
            advice = "check the user name in DATABASE_URL (the role must exist and may log in) and the server's pg_hba.conf"
        default: advice = "check DATABASE_URL"
        }
        return " (" + (state.map { "SQLSTATE \($0); " } ?? "") + advice + ")"
    }
}

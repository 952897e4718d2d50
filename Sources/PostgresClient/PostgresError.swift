/// A failed PostgreSQL call: names the server, the statement and what went wrong; a server
/// error carries its SQLSTATE.
public struct PostgresError: Error, CustomStringConvertible, Sendable {
    private enum Code: Sendable, Equatable {
        case configuration
        case connect
        case server(sqlState: String)
        case timeout
        case connectionLost
        case decode
        case poolExhausted
        case shutDown
        case migration
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

    /// The server's SQLSTATE (`23505` for a unique violation, …) when the server refused.
    public var sqlState: String? {
        if case .server(let state) = code { return state }
        return code == .timeout ? "57014" : nil
    }

    /// The server could not be reached or the connection broke: worth trying again later.
    public var isUnavailable: Bool { [.connect, .connectionLost, .poolExhausted].contains(code) }
    public var isTimeout: Bool { code == .timeout }

    public var description: String {
        let hint: String
        switch code {
        case .configuration: return reason
        case .decode: return "PostgreSQL \(statement): \(reason)"
        case .connect, .connectionLost: hint = " (check DATABASE_URL, and that the server runs and accepts this client)"
        case .timeout: hint = " (DATABASE_STATEMENT_TIMEOUT sets the limit)"
        case .poolExhausted: hint = " (raise DATABASE_POOL_SIZE, or look for slow statements)"
        case .server(let state): hint = " (SQLSTATE \(state))"
        case .shutDown, .migration: hint = ""
        }
        return "PostgreSQL \(server) \(statement) failed: \(reason)\(hint)"
    }
}

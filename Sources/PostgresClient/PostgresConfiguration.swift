import CLibPQ

/// Where the database is and how to use it, read once (`DATABASE_URL` and friends).
public struct PostgresConfiguration: Sendable, Equatable {
    /// libpq's connection string: a `postgresql://` URI or `key=value` pairs, `sslmode` included
    /// (Neon and Supabase want `sslmode=require`; libpq does the TLS).
    public var url: String
    /// `DATABASE_POOL_SIZE` (default 8): connections open at most.
    public var poolSize: Int
    /// `DATABASE_CONNECT_TIMEOUT` (seconds, default 5; libpq counts whole seconds).
    public var connectTimeout: Duration
    /// `DATABASE_STATEMENT_TIMEOUT` (seconds, default 30): the server cancels a statement that runs
    /// longer (`statement_timeout`); it is also the longest a caller waits for a free connection.
    public var statementTimeout: Duration
    /// For the server's `pg_stat_activity`.
    public var applicationName: String

    public init(
        url: String, poolSize: Int = 8, connectTimeout: Duration = .seconds(5), statementTimeout: Duration = .seconds(30),
        applicationName: String = "swift-worker"
    ) {
        self.url = url
        self.poolSize = poolSize
        self.connectTimeout = connectTimeout
        self.statementTimeout = statementTimeout
        self.applicationName = applicationName
    }

    /// `DATABASE_URL` and the tuning variables; nil when `DATABASE_URL` is unset or empty. The
    /// URL is checked by libpq's own parser, and an error never shows the password.
    public static func fromEnvironment(_ env: [String: String]) throws(PostgresError) -> PostgresConfiguration? {
        guard let url = env["DATABASE_URL"], !url.isEmpty else { return nil }
        var configuration = PostgresConfiguration(url: url)
        try configuration.validate()
        func number(_ name: String, _ range: ClosedRange<Double>) throws(PostgresError) -> Double? {
            guard let raw = env[name], !raw.isEmpty else { return nil }
            guard let value = Double(raw), range.contains(value) else {
                throw .configuration("\(name)=\(raw) is not valid: expected a number from \(range.lowerBound) to \(range.upperBound)")
            }
            return value
        }
        if let size = try number("DATABASE_POOL_SIZE", 1...1000) { configuration.poolSize = Int(size) }
        if let seconds = try number("DATABASE_CONNECT_TIMEOUT", 1...3600) { configuration.connectTimeout = .seconds(Int64(seconds)) }
        if let seconds = try number("DATABASE_STATEMENT_TIMEOUT", 0.001...86_400) {
            configuration.statementTimeout = .milliseconds(Int64(seconds * 1000))
        }
        return configuration
    }

    /// Throws unless libpq can read `url`.
    public func validate() throws(PostgresError) {
        var message: UnsafeMutablePointer<CChar>? = nil
        guard let options = PQconninfoParse(url, &message) else {
            let reason = message.map { String(cString: $0) } ?? "it cannot be read"
            if let message { PQfreemem(message) }
            throw .configuration("DATABASE_URL is not a PostgreSQL connection string: \(reason.trimmingNewlines) (expected postgresql://user:password@host:port/database?sslmode=require)")
        }
        PQconninfoFree(options)
    }

    /// `host:port/database` for errors and logs (never the password).
    public var server: String {
        var message: UnsafeMutablePointer<CChar>? = nil
        guard let options = PQconninfoParse(url, &message) else {
            if let message { PQfreemem(message) }
            return "(unreadable DATABASE_URL)"
        }
        defer { PQconninfoFree(options) }
        var fields: [String: String] = [:]
        var index = 0
        while let keyword = options[index].keyword {
            if let value = options[index].val { fields[String(cString: keyword)] = String(cString: value) }
            index += 1
        }
        return "\(fields["host"] ?? fields["hostaddr"] ?? "localhost"):\(fields["port"] ?? "5432")/\(fields["dbname"] ?? fields["user"] ?? "")"
    }
}

extension String {
    var trimmingNewlines: String {
        String(self.reversed().drop { $0 == "\n" || $0 == " " }.reversed())
    }
}

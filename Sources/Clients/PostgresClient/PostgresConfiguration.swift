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

    /// Throws unless libpq can read `url`. The error never shows the password (libpq's parser
    /// quotes the token it could not read, which may be the password).
    public func validate() throws(PostgresError) {
        var message: UnsafeMutablePointer<CChar>? = nil
        guard let options = PQconninfoParse(url, &message) else {
            let reason = hidingPassword(message.map { String(cString: $0) } ?? "it cannot be read")
            if let message { PQfreemem(message) }
            throw .configuration("DATABASE_URL is not a PostgreSQL connection string: \(reason.trimmingNewlines) (expected postgresql://user:password@host:port/database?sslmode=require)")
        }
        PQconninfoFree(options)
    }

    /// `host:port/database` for errors and logs (never the password).
    public var server: String {
        guard let fields = options() else { return "(unreadable DATABASE_URL)" }
        return "\(fields["host"] ?? fields["hostaddr"] ?? "localhost"):\(fields["port"] ?? "5432")/\(fields["dbname"] ?? fields["user"] ?? "")"
    }

    /// `text` with the password of `url` replaced by `(hidden)`: as libpq reads it, and as written
    /// in a URI (percent-escapes included). libpq's connection errors do not quote it; this makes
    /// sure no error or log line ever does. Passwords shorter than 4 characters are left alone
    /// (replacing them would garble the text more than it hides).
    package func hidingPassword(_ text: String) -> String {
        var shown = text
        for secret in [options()?["password"], Self.passwordInURI(url).map { String($0) }] {
            guard let secret, secret.count >= 4 else { continue }
            shown = shown.replacing(secret, with: "(hidden)")
        }
        return shown
    }

    /// libpq's reading of `url`: every option it sets; nil when it cannot read it.
    private func options() -> [String: String]? {
        var message: UnsafeMutablePointer<CChar>? = nil
        guard let options = PQconninfoParse(url, &message) else {
            if let message { PQfreemem(message) }
            return nil
        }
        defer { PQconninfoFree(options) }
        var fields: [String: String] = [:]
        var index = 0
        while let keyword = options[index].keyword {
            if let value = options[index].val { fields[String(cString: keyword)] = String(cString: value) }
            index += 1
        }
        return fields
    }

    /// The password as written in a `postgresql://user:password@host/…` URI, read as libpq reads
    /// it (the user information ends at the first `@` before any `/`); nil when there is none.
    static func passwordInURI(_ url: String) -> Substring? {
        let lowered = url.lowercased()
        let scheme = lowered.hasPrefix("postgresql://") ? 13 : lowered.hasPrefix("postgres://") ? 11 : 0
        guard scheme > 0 else { return nil }
        let authority = url.dropFirst(scheme).prefix { $0 != "/" }
        guard let at = authority.firstIndex(of: "@") else { return nil }
        let userInformation = authority[..<at]
        guard let colon = userInformation.firstIndex(of: ":") else { return nil }
        let password = userInformation[userInformation.index(after: colon)...]
        return password.isEmpty ? nil : password
    }
}

extension String {
    var trimmingNewlines: String {
        String(self.reversed().drop { $0 == "\n" || $0 == " " }.reversed())
    }
}

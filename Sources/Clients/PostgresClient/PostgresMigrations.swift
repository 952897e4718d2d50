/// A schema change, applied once: `version` orders them and is recorded when applied.
public struct PostgresMigration: Sendable {
    public let version: Int
    public let name: String
    public let sql: String

    public init(version: Int, name: String, sql: String) {
        self.version = version
        self.name = name
        self.sql = sql
    }
}

extension PostgresClient {
    /// Applies the migrations not yet recorded in `schema_migrations`, in version order, each in a
    /// transaction with its record. Safe when several workers start at once: they queue on a
    /// PostgreSQL advisory lock (`lockKey`), so each migration runs exactly once. Returns the
    /// versions applied now.
    @discardableResult
    public func migrate(_ migrations: [PostgresMigration], lockKey: Int64 = 0x5357_4D49_4752) async throws -> [Int] {
        let versions = migrations.map(\.version)
        guard Set(versions).count == versions.count else {
            throw PostgresError.configuration("two migrations share a version: \(versions.sorted())")
        }
        let server = configuration.server
        return try await withConnection("migrations") { connection in
            _ = try connection.query("SELECT pg_advisory_lock($1)", [String(lockKey)])
            defer { _ = try? connection.query("SELECT pg_advisory_unlock($1)", [String(lockKey)]) }
            try connection.execute(
                """
                CREATE TABLE IF NOT EXISTS schema_migrations (
                    version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())
                """)
            let done = Set(try connection.query("SELECT version FROM schema_migrations", []).map { row in try row.decode("version", as: Int.self) })
            var applied: [Int] = []
            for migration in migrations.sorted(by: { $0.version < $1.version }) where !done.contains(migration.version) {
                do {
                    try connection.execute("BEGIN")
                    try connection.execute(migration.sql)
                    _ = try connection.query(
                        "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", [String(migration.version), migration.name])
                    try connection.execute("COMMIT")
                    applied.append(migration.version)
                } catch {
                    try? connection.execute("ROLLBACK")
                    throw PostgresError.migration(server, "\(migration.version) (\(migration.name))", "\(error)")
                }
            }
            return applied
        }
    }
}

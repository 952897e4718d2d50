import PostgresClient
import Testing
import TestSupport
import WorkerJSON
import WorkerRuntimeTesting

@Suite("PostgreSQL settings", .defaultPass)
struct PostgresConfigurationTests {
    @Test("DATABASE_URL is read by libpq's parser; bad values name the variable, never the password")
    func settings() throws {
        #expect(try PostgresConfiguration.fromEnvironment([:]) == nil)
        let configuration = try #require(try PostgresConfiguration.fromEnvironment([
            "DATABASE_URL": "postgresql://app:s3cret@db.example:6543/leads?sslmode=require", "DATABASE_POOL_SIZE": "3",
            "DATABASE_STATEMENT_TIMEOUT": "2.5",
        ]))
        #expect(configuration.poolSize == 3 && configuration.statementTimeout == .milliseconds(2500))
        #expect(configuration.server == "db.example:6543/leads")
        for (name, value) in [("DATABASE_URL", "postgresql://app:s3cret@host:notaport/x?sslmode=maybe=yes"), ("DATABASE_POOL_SIZE", "0")] {
            var env = ["DATABASE_URL": "postgresql://localhost/x"]
            env[name] = value
            do {
                _ = try PostgresConfiguration.fromEnvironment(env)
                Issue.record("\(name)=\(value) must be refused")
            } catch {
                #expect("\(error)".contains(name) && !"\(error)".contains("s3cret"))
            }
        }
    }
}

/// Against a real PostgreSQL server started for the test.
@Suite("PostgreSQL client against a real server", .tags(.servers), .pass(.servers), .serialized, .enabled(if: PostgresTestServer.isInstalled, "postgresql is installed by scripts/test.sh"))
struct PostgresClientTests {
    private func client(_ server: PostgresTestServer, sslmode: String = "disable", _ change: (inout PostgresConfiguration) -> Void = { _ in }) throws -> PostgresClient {
        var configuration = PostgresConfiguration(url: server.url(sslmode: sslmode), poolSize: 4, statementTimeout: .seconds(5))
        change(&configuration)
        return try PostgresClient(configuration: configuration)
    }

    @Test("Parameterized statements, typed decoding by column, NULLs, JSON and bytea; errors name the column")
    func queries() async throws {
        let server = try PostgresTestServer()
        let db = try client(server)
        defer { Task { await db.shutdown() } }
        try await db.query("CREATE TABLE leads (id text PRIMARY KEY, score float8, data jsonb, blob bytea, qualified boolean, n bigint)")
        let inserted = try await db.query(
            "INSERT INTO leads VALUES ($1, $2, $3, $4, $5, $6), ($7, NULL, NULL, NULL, NULL, NULL)",
            ["a'; DROP TABLE leads; --", 0.75, (["k": [1, "two"]] as JSONValue), [UInt8]([0, 255, 10]), true, Int64(1) << 40, "b"])
        #expect(inserted.affectedRows == 2)
        let rows = try await db.query("SELECT * FROM leads ORDER BY id")
        #expect(rows.count == 2 && rows.columns.contains("score"))
        let first = rows[0]
        #expect(try first.decode("id", as: String.self) == "a'; DROP TABLE leads; --")
        #expect(try first.decode("score", as: Double.self) == 0.75)
        #expect(try first.decode("data", as: JSONValue.self) == ["k": [1, "two"]])
        #expect(try first.decode("blob", as: [UInt8].self) == [0, 255, 10])
        #expect(try first.decode("qualified", as: Bool.self))
        #expect(try first.decode("n", as: Int64.self) == 1 << 40)
        #expect(try rows[1].decode("score", as: Double?.self) == nil)
        do {
            _ = try rows[1].decode("score", as: Double.self)
            Issue.record("NULL is not a Double")
        } catch {
            #expect("\(error)".contains("\"score\"") && "\(error)".contains("NULL"))
        }
        do {
            _ = try first.decode("id", as: Int.self)
            Issue.record("text is not a number")
        } catch {
            #expect("\(error)".contains("\"id\"") && "\(error)".contains("whole number"))
        }
        #expect(throws: PostgresError.self) { try first.decode("missing", as: String.self) }
        do {
            try await db.query("INSERT INTO leads (id) VALUES ($1)", ["b"])
            Issue.record("a duplicate key must be refused")
        } catch let error as PostgresError {
            #expect(error.sqlState == "23505")
            #expect("\(error)".contains("INSERT INTO leads"))
        }
    }

    @Test("Text holding a NUL character is refused before it is sent, naming the parameter, instead of being cut short there")
    func nulInText() async throws {
        let server = try PostgresTestServer()
        let db = try client(server)
        defer { Task { await db.shutdown() } }
        try await db.query("CREATE TABLE leads (id text PRIMARY KEY, note text)")
        try await db.query("INSERT INTO leads VALUES ($1, $2)", ["L1", "first"])
        // libpq takes C strings: "L1\0anything" used to arrive as "L1" and find lead L1.
        do {
            let rows = try await db.query("SELECT id FROM leads WHERE id = $1", ["L1\u{0}anything"])
            Issue.record("a NUL in $1 must be refused, got \(rows.count) rows")
        } catch let error as PostgresError {
            #expect(error.parameterPosition == 1 && error.sqlState == nil && !error.isUnavailable)
            let text = "\(error)"
            #expect(text.contains("$1") && text.contains("NUL") && text.contains("SELECT id FROM leads") && text.contains("not sent"), "\(text)")
        }
        // Nothing is sent: neither insert lands with its text cut at the NUL.
        await #expect {
            _ = try await db.query("INSERT INTO leads VALUES ($1, $2)", ["L2", "cut\u{0}here"])
        } throws: { ($0 as? PostgresError)?.parameterPosition == 2 }
        await #expect {
            _ = try await db.withTransaction { transaction in
                _ = try await transaction.query("INSERT INTO leads VALUES ($1, $2)", ["L3\u{0}", "x"])
                return 0
            }
        } throws: { ($0 as? PostgresError)?.parameterPosition == 1 }
        let rows = try await db.query("SELECT id FROM leads ORDER BY id")
        #expect(try rows.map { try $0.decode("id", as: String.self) } == ["L1"])
        // The connections are still good, and the forms that carry a NUL go through: bytea, and
        // JSON (written as \u0000; the json type keeps it, jsonb refuses it with its own SQLSTATE).
        #expect(try await db.query("SELECT $1::bytea AS b", [[UInt8]([76, 0, 49])])[0].decode("b", as: [UInt8].self) == [76, 0, 49])
        #expect(try await db.query("SELECT $1::json AS j", [JSONValue.string("a\u{0}b")])[0].decode("j", as: JSONValue.self) == .string("a\u{0}b"))
    }

    @Test("Transactions commit, roll back on a thrown error, and never leave a connection mid-transaction")
    func transactions() async throws {
        let server = try PostgresTestServer()
        let db = try client(server) { $0.poolSize = 1 }
        defer { Task { await db.shutdown() } }
        try await db.query("CREATE TABLE t (n int)")
        try await db.withTransaction { tx in
            try await tx.query("INSERT INTO t VALUES ($1)", [1])
            try await tx.query("INSERT INTO t VALUES ($1)", [2])
        }
        struct Abort: Error {}
        await #expect(throws: Abort.self) {
            try await db.withTransaction { tx in
                try await tx.query("INSERT INTO t VALUES ($1)", [3])
                throw Abort()
            }
        }
        await #expect(throws: PostgresError.self) {
            try await db.withTransaction { tx in
                try await tx.query("INSERT INTO t VALUES ($1)", [4])
                try await tx.query("SELECT 1/0")
            }
        }
        let rows = try await db.query("SELECT sum(n) AS total, count(*) AS rows FROM t")
        #expect(try rows[0].decode("total", as: Int.self) == 3 && rows[0].decode("rows", as: Int.self) == 2)
    }

    @Test("Migrations: applied once, in order, even when two clients race; a failing one is rolled back and named")
    func migrations() async throws {
        let server = try PostgresTestServer()
        let migrations = [
            PostgresMigration(version: 2, name: "scores", sql: "ALTER TABLE leads ADD COLUMN score float8; INSERT INTO log VALUES ('2')"),
            PostgresMigration(version: 1, name: "leads", sql: "CREATE TABLE leads (id text PRIMARY KEY); CREATE TABLE log (v text)"),
        ]
        let one = try client(server)
        let two = try client(server)
        defer { Task { await one.shutdown(); await two.shutdown() } }
        async let first = one.migrate(migrations)
        async let second = two.migrate(migrations)
        let applied = try await [first, second]
        #expect(applied.sorted { $0.count < $1.count } == [[], [1, 2]])
        #expect(try await one.query("SELECT count(*) AS n FROM log")[0].decode("n", as: Int.self) == 1)
        #expect(try await one.migrate(migrations) == [])
        let broken = migrations + [PostgresMigration(version: 3, name: "bad", sql: "CREATE TABLE x (a int); SELECT nonsense FROM nowhere")]
        do {
            try await one.migrate(broken)
            Issue.record("migration 3 must fail")
        } catch {
            #expect("\(error)".contains("3 (bad)"))
        }
        #expect(try await one.query("SELECT to_regclass('x') IS NULL AS gone")[0].decode("gone", as: Bool.self))
        #expect(try await one.query("SELECT max(version) AS v FROM schema_migrations")[0].decode("v", as: Int.self) == 2)
    }

    @Test("Tasks on the client's executor: statements on every connection at once get their own rows; shutdown ends them")
    func clientExecutor() async throws {
        let server = try PostgresTestServer()
        let db = try client(server) { $0.poolSize = 8 }
        let executor = try #require(db.executor)
        try await db.query("CREATE TABLE accounts (id int PRIMARY KEY, balance int)")
        try await db.query("INSERT INTO accounts SELECT n, n * 10 FROM generate_series(1, 1000) AS n")
        let checked = try await withThrowingTaskGroup(of: Int.self) { group in
            for task in 0..<16 {
                group.addTask(executorPreference: executor) {
                    for round in 0..<200 {
                        let id = (task * 200 + round) % 1000 + 1
                        let rows = try await db.query("SELECT balance FROM accounts WHERE id = $1", [id])
                        guard rows.count == 1, try rows[0].decode("balance", as: Int.self) == id * 10 else { return -1 }
                    }
                    try await db.withTransaction { transaction in
                        _ = try await transaction.query("UPDATE accounts SET balance = balance + 1 WHERE id = $1", [task + 1])
                    }
                    return 200
                }
            }
            return try await group.reduce(0, +)
        }
        #expect(checked == 16 * 200)
        #expect(try await db.query("SELECT sum(balance) AS s FROM accounts WHERE id <= 16")[0].decode("s", as: Int.self) == (1...16).reduce(0) { $0 + $1 * 10 } + 16)
        // Statements under way when the client shuts down end (with an error or a result); none hangs.
        let running = (0..<8).map { _ in Task(executorPreference: executor) { try await db.query("SELECT pg_sleep(0.2)") } }
        try await Task.sleep(for: .milliseconds(50))
        await db.shutdown()
        for task in running {
            do {
                _ = try await withTimeout(.seconds(20), "a statement under way at shutdown") { try await task.value }
            } catch let error as TimeoutError {
                Issue.record("\(error)")
            } catch {
                // Ending with an error is what shutdown may do to a statement under way.
            }
        }
        await #expect(throws: PostgresError.self) { try await Task(executorPreference: executor) { try await db.query("SELECT 1") }.value }
    }

    @Test("The server killed and restarted: calls fail naming the server, then work on new connections")
    func restart() async throws {
        let server = try PostgresTestServer()
        let db = try client(server) { $0.connectTimeout = .seconds(2) }
        defer { Task { await db.shutdown() } }
        try await db.query("CREATE TABLE k (n int)")
        try await withThrowingTaskGroup(of: Void.self) { group in
            for n in 0..<8 { group.addTask { try await db.query("INSERT INTO k VALUES ($1)", [n]) } }
            try await group.waitForAll()
        }
        server.stop()
        do {
            try await db.query("SELECT count(*) FROM k")
            Issue.record("the server is down")
        } catch let error as PostgresError {
            #expect(error.isUnavailable)
            #expect("\(error)".contains("127.0.0.1:\(server.port)"))
        }
        try server.start()
        var counted: Int?
        for _ in 0..<20 where counted == nil {
            counted = try? await db.query("SELECT count(*) AS n FROM k")[0].decode("n", as: Int.self)
            if counted == nil { try await Task.sleep(for: .milliseconds(250)) }
        }
        #expect(counted == 8)
    }

    @Test("sslmode=require speaks TLS; a statement over the timeout is cancelled and named")
    func tlsAndTimeout() async throws {
        let server = try PostgresTestServer(tls: true)
        let secure = try client(server, sslmode: "require") { $0.statementTimeout = .milliseconds(500) }
        defer { Task { await secure.shutdown() } }
        #expect(try await secure.query("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")[0].decode("ssl", as: Bool.self))
        do {
            try await secure.query("SELECT pg_sleep(3)")
            Issue.record("pg_sleep(3) must hit the 0.5 s timeout")
        } catch let error as PostgresError {
            #expect(error.isTimeout)
        }
        #expect(try await secure.query("SELECT 1 AS one")[0].decode("one", as: Int.self) == 1)
    }

    @Test("Nobody listening: a clear connect error")
    func refused() async throws {
        let db = try PostgresClient(configuration: PostgresConfiguration(url: "postgresql://postgres@127.0.0.1:\(RedisTestServer.unusedPort())/x", connectTimeout: .seconds(2)))
        defer { Task { await db.shutdown() } }
        do {
            try await db.query("SELECT 1")
            Issue.record("nothing listens there")
        } catch let error as PostgresError {
            #expect(error.isUnavailable && "\(error)".contains("DATABASE_URL"))
        }
    }
}

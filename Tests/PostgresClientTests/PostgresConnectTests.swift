@testable import PostgresClient
import Testing
import TestSupport
import WorkerRuntimeTesting

@Suite("PostgreSQL connection errors as libpq reports them", .defaultPass)
struct PostgresConnectParsingTests {
    @Test("The SQLSTATE after the severity is read and taken out of the text; source locations are dropped")
    func parse() {
        let (reason, states) = PostgresConnect.parse(
            "connection to server at \"127.0.0.1\", port 5432 failed: FATAL:  3D000: database \"nope\" does not exist\n"
                + "LOCATION:  InitPostgres, postinit.c:948\n")
        #expect(states == ["3D000"])
        #expect(reason == "connection to server at \"127.0.0.1\", port 5432 failed: FATAL:  database \"nope\" does not exist")
        let refused = PostgresConnect.parse(
            "connection to server at \"127.0.0.1\", port 1 failed: Connection refused\n"
                + "\tIs the server running on that host and accepting TCP/IP connections?\n")
        #expect(refused.sqlStates.isEmpty && refused.reason.hasSuffix("accepting TCP/IP connections?"))
        for state in ["28P01", "28000", "3D000", "42501"] { #expect(PostgresConnect.isRefusal(state), "\(state)") }
        for state in ["57P03", "53300", "08006", "XX000"] { #expect(!PostgresConnect.isRefusal(state), "\(state)") }
    }

    @Test("A DATABASE_URL libpq cannot read is refused without quoting the password libpq quotes")
    func unreadableURL() {
        do {
            _ = try PostgresConfiguration.fromEnvironment(["DATABASE_URL": "postgresql://app:p%zzs3cret@db.example/leads"])
            Issue.record("an invalid percent-escape must be refused")
        } catch {
            #expect("\(error)".contains("DATABASE_URL") && !"\(error)".contains("s3cret"), "\(error)")
        }
        let configuration = PostgresConfiguration(url: "postgresql://app:s3cret-pw@db.example/leads")
        #expect(configuration.hidingPassword("x s3cret-pw y") == "x (hidden) y")
        #expect(PostgresConfiguration.passwordInURI("postgres://app:a@b/c@db.example/leads") == "a")
        #expect(PostgresConfiguration.passwordInURI("postgresql://app@db.example/leads") == nil)
    }
}

/// Connections refused by a real server, to a port nobody listens on, and to one that never
/// answers.
@Suite(
    "PostgreSQL connections refused, unreachable or abandoned", .tags(.servers), .pass(.servers), .serialized,
    .enabled(if: PostgresTestServer.isInstalled, "postgresql is installed by scripts/test.sh"))
struct PostgresConnectTests {
    static let password = "pw-\(UInt32.random(in: 0...UInt32.max))-never-shown"

    /// The error of the first statement on a new client for `url` (nil if it connected).
    private func connectError(_ url: String) async throws -> PostgresError? {
        let client = try PostgresClient(configuration: PostgresConfiguration(url: url, poolSize: 1))
        defer { Task { await client.shutdown() } }
        return try await firstError(of: client)
    }

    /// The error of a statement on `client` (nil if it ran); fails the test instead of hanging.
    private func firstError(of client: PostgresClient) async throws -> PostgresError? {
        do {
            _ = try await withTimeout(.seconds(20), "the connection attempt to end") { try await client.query("SELECT 1") }
            return nil
        } catch let error as PostgresError {
            return error
        }
    }

    @Test("A missing database or role is refused at once: the SQLSTATE named, not an outage, the password never shown")
    func refused() async throws {
        let server = try PostgresTestServer()
        let missing = try #require(try await connectError(
            "postgresql://postgres:\(Self.password)@127.0.0.1:\(server.port)/no_such_db?sslmode=disable"))
        #expect(missing.isRefused && !missing.isUnavailable && missing.sqlState == "3D000", "\(missing)")
        let text = "\(missing)"
        #expect(text.contains("no_such_db") && text.contains("SQLSTATE 3D000") && text.contains("DATABASE_URL"), "\(text)")
        #expect(!text.contains(Self.password) && !text.contains("LOCATION"), "\(text)")

        let ghost = try #require(try await connectError(
            "postgresql://ghost_role:\(Self.password)@127.0.0.1:\(server.port)/postgres?sslmode=disable"))
        #expect(ghost.isRefused && ghost.sqlState == "28000" && "\(ghost)".contains("ghost_role"), "\(ghost)")
        #expect(!"\(ghost)".contains(Self.password))

        let down = try #require(try await connectError(
            "postgresql://postgres:\(Self.password)@127.0.0.1:\(RedisTestServer.unusedPort())/postgres?sslmode=disable"))
        #expect(down.isUnavailable && !down.isRefused && down.sqlState == nil, "\(down)")
        #expect(!"\(down)".contains(Self.password))
    }

    @Test("A server that never answers: cancelling the waiting task ends the attempt at once; otherwise the connect timeout does")
    func neverAnswers() async throws {
        let silent = try SilentListener()
        defer { withExtendedLifetime(silent) {} }
        let url = "postgresql://postgres@127.0.0.1:\(silent.port)/postgres?sslmode=disable"
        let patient = try PostgresClient(configuration: PostgresConfiguration(url: url, poolSize: 1, connectTimeout: .seconds(30)))
        defer { Task { await patient.shutdown() } }
        let waiting = Task { try await patient.query("SELECT 1") }
        try await Task.sleep(for: .milliseconds(300))
        let cancelledAt = ContinuousClock.now
        waiting.cancel()
        let outcome = await waiting.result
        // Not cancelled, it would wait out the 30 s connect timeout; a loaded host takes seconds.
        #expect(ContinuousClock.now - cancelledAt < .seconds(8), "the attempt ended when its task was cancelled")
        switch outcome {
        case .success: Issue.record("a server that never answers cannot be connected to")
        case .failure(let error): #expect(error is CancellationError, "\(error)")
        }

        let brief = try PostgresClient(configuration: PostgresConfiguration(url: url, poolSize: 1, connectTimeout: .seconds(1)))
        defer { Task { await brief.shutdown() } }
        let started = ContinuousClock.now
        let error = try #require(try await firstError(of: brief))
        #expect(error.isUnavailable && "\(error)".contains("DATABASE_CONNECT_TIMEOUT"), "\(error)")
        // Its 1 s connect timeout, not the server's silence, ends it (a loaded host adds seconds).
        #expect(ContinuousClock.now - started < .seconds(12))
    }
}

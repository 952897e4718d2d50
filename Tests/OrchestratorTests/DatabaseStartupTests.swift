import Foundation
import Logging
@testable import Orchestrator
import PostgresClient
import Testing
import TestSupport
import WorkerJSON
import WorkerRuntime
import WorkerRuntimeTesting

@Suite("Start-up settings", .defaultPass)
struct DatabaseStartupSettingsTests {
    @Test("DATABASE_STARTUP_TIMEOUT: 60 s unless set; a bad value is refused naming it")
    func startupTimeout() throws {
        #expect(try OrchestratorConfiguration.fromEnvironment([:]).databaseStartupTimeout == .seconds(60))
        #expect(try OrchestratorConfiguration.fromEnvironment(["DATABASE_STARTUP_TIMEOUT": "2.5"]).databaseStartupTimeout == .milliseconds(2500))
        for value in ["0", "-1", "soon", "3601"] {
            do {
                _ = try OrchestratorConfiguration.fromEnvironment(["DATABASE_STARTUP_TIMEOUT": value])
                Issue.record("DATABASE_STARTUP_TIMEOUT=\(value) must be refused")
            } catch {
                #expect("\(error)".contains("DATABASE_STARTUP_TIMEOUT"), "\(error)")
            }
        }
    }
}

/// The orchestrator's start-up against a real PostgreSQL and a wrong `DATABASE_URL`: a refused
/// connection fails it at once, an unreachable server within `DATABASE_STARTUP_TIMEOUT`.
@Suite(
    "Orchestrator start-up on a wrong DATABASE_URL", .tags(.servers), .pass(.servers), .serialized,
    .enabled(if: PostgresTestServer.isInstalled, "postgresql is installed by scripts/test.sh"))
struct DatabaseStartupTests {
    static let password = "pw-\(UInt32.random(in: 0...UInt32.max))-never-shown"

    private func orchestrator(_ url: String, startup: Duration = .seconds(60)) throws -> OrchestratorHandler {
        try Orchestrator.makeHandler(Fixtures.configuration {
            $0.database = PostgresConfiguration(url: url, poolSize: 2)
            $0.databaseStartupTimeout = startup
        })
    }

    /// How `start()` ended: the error it threw (nil when it started) and how long it took. Bounded,
    /// so that a start-up that hangs fails the test instead of holding it.
    private func startUp(_ handler: OrchestratorHandler, within limit: Duration = .seconds(20)) async -> (error: (any Error)?, took: Duration) {
        let started = ContinuousClock.now
        do {
            try await withTimeout(limit, "the orchestrator's start-up to end") { try await handler.start() }
            return (nil, ContinuousClock.now - started)
        } catch {
            return (error, ContinuousClock.now - started)
        }
    }

    /// Expects start-up to fail at once with a refused connection whose message names `names`
    /// and `sqlState`, and never the password.
    private func expectRefused(_ url: String, sqlState: String?, naming names: [String]) async throws {
        let handler = try orchestrator(url)
        let (error, took) = await startUp(handler)
        try await handler.shutdown()
        let refused = try #require(error as? PostgresError, "\(error.map { "\($0)" } ?? "start-up succeeded")")
        #expect(refused.isRefused && refused.sqlState == sqlState, "\(refused)")
        // Waited out, it would take DATABASE_STARTUP_TIMEOUT (60 s); a loaded host takes seconds.
        #expect(took < .seconds(20), "a refused connection is not waited out: \(took)")
        let text = "\(refused)"
        for name in names { #expect(text.contains(name), "\(name) in: \(text)") }
        #expect(!text.contains(Self.password), "\(text)")
    }

    @Test("A database that does not exist fails start-up at once, naming it, without the password")
    func missingDatabase() async throws {
        let server = try PostgresTestServer()
        try await expectRefused(
            "postgresql://postgres:\(Self.password)@127.0.0.1:\(server.port)/no_such_db?sslmode=disable", sqlState: "3D000",
            naming: ["no_such_db", "DATABASE_URL"])
    }

    @Test("A role that does not exist fails start-up at once, naming it, without the password")
    func missingRole() async throws {
        let server = try PostgresTestServer()
        try await expectRefused(
            "postgresql://ghost_role:\(Self.password)@127.0.0.1:\(server.port)/postgres?sslmode=disable", sqlState: "28000",
            naming: ["ghost_role", "DATABASE_URL"])
    }

    @Test("A wrong password, or none where one is asked for, fails start-up at once; the right one starts")
    func wrongPassword() async throws {
        let server = try PostgresTestServer()
        try server.psql("CREATE ROLE leads_app LOGIN PASSWORD '\(Self.password)'; GRANT ALL ON SCHEMA public TO leads_app")
        // Password authentication for this role (the cluster trusts everyone else).
        let hba = server.directory.path + "/data/pg_hba.conf"
        let rules = try String(contentsOfFile: hba, encoding: .utf8)
        try ("host all leads_app 127.0.0.1/32 scram-sha-256\n" + rules).write(toFile: hba, atomically: false, encoding: .utf8)
        try server.psql("SELECT pg_reload_conf()")
        try await Task.sleep(for: .milliseconds(500))

        let base = "127.0.0.1:\(server.port)/postgres?sslmode=disable"
        try await expectRefused("postgresql://leads_app:wrong-\(Self.password)@\(base)", sqlState: "28P01", naming: ["leads_app", "password"])
        try await expectRefused("postgresql://leads_app@\(base)", sqlState: nil, naming: ["DATABASE_URL", "password"])

        let right = try orchestrator("postgresql://leads_app:\(Self.password)@\(base)")
        let (error, _) = await startUp(right)
        #expect(error == nil, "\(error.map { "\($0)" } ?? "")")
        try await right.shutdown()
    }

    @Test("An unreachable server is waited for within DATABASE_STARTUP_TIMEOUT, then start-up fails naming it and the setting")
    func unreachable() async throws {
        let port = RedisTestServer.unusedPort()
        let handler = try orchestrator("postgresql://postgres:\(Self.password)@127.0.0.1:\(port)/leads?sslmode=disable", startup: .seconds(2))
        let (error, took) = await startUp(handler)
        try await handler.shutdown()
        let text = error.map { "\($0)" } ?? "start-up succeeded"
        #expect(error is OrchestratorError, "\(text)")
        #expect(text.contains("DATABASE_STARTUP_TIMEOUT") && text.contains("127.0.0.1:\(port)/leads") && !text.contains(Self.password), "\(text)")
        #expect(took >= .milliseconds(500) && took < .seconds(8), "waited, within the budget: \(took)")
    }

    @Test("NFC and NFD spellings of a lead id are one workflow row in PostgreSQL (which compares text byte by byte)")
    func normalizedLeadIDs() async throws {
        let server = try PostgresTestServer()
        try server.psql("CREATE DATABASE spellings")
        let client = try PostgresClient(configuration: PostgresConfiguration(url: server.url(database: "spellings"), poolSize: 4))
        let store = PostgresWorkflowStore(client: client, outageBudget: .seconds(20), logger: Logger(label: "test"))
        try await store.prepare()
        defer { Task { await client.shutdown() } }
        let flow = WorkflowScenarios(store: store).workflow(memory: StubEndpoint("memory", Fixtures.memoryAnswer))
        _ = try await flow.run(Fixtures.lead(Fixtures.strongLead.replacing("id", "cafe\u{301}")), deadline: Fixtures.soon, logger: Fixtures.logger)
        let again = try await flow.run(Fixtures.lead(Fixtures.strongLead.replacing("id", "caf\u{E9}")), deadline: Fixtures.soon, logger: Fixtures.logger)
        #expect(again["reused"] == true)
        let rows = try await client.query("SELECT lead_id FROM orchestrator_workflows")
        #expect(rows.count == 1)
        let id: String = try #require(rows.first).decode("lead_id")
        #expect(Array(id.utf8) == Array("caf\u{E9}".utf8))
    }
}

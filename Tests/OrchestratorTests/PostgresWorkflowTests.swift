import Logging
@testable import Orchestrator
import PostgresClient
import Testing
import TestSupport
import WorkerJSON

/// The workflow rules against a real PostgreSQL (installed by scripts/test.sh).
@Suite(
    "Durable lead workflows in PostgreSQL", .tags(.servers), .pass(.servers), .serialized,
    .enabled(if: PostgresTestServer.isInstalled, "postgresql is installed by scripts/test.sh"))
struct PostgresWorkflowTests {
    /// A store on a database of its own, migrated.
    static func store(_ server: PostgresTestServer, database: String, sslmode: String = "disable") async throws -> PostgresWorkflowStore {
        try server.psql("CREATE DATABASE \(database)")
        let client = try PostgresClient(configuration: PostgresConfiguration(url: server.url(database: database, sslmode: sslmode), poolSize: 8))
        let store = PostgresWorkflowStore(client: client, outageBudget: .seconds(20), logger: Logger(label: "test"))
        try await store.prepare()
        return store
    }

    @Test("The same rules as in memory: stages saved, reuse, rejection, resume without repeats, retries, leases, recovery")
    func scenarios() async throws {
        let server = try PostgresTestServer()
        let cases: [(String, (WorkflowScenarios) async throws -> Void)] = [
            ("reuse", { try await $0.qualifiesOnceAndReuses() }), ("reject", { try await $0.rejectsBelowThreshold() }),
            ("resume", { try await $0.resumesWithoutRepeating() }), ("retries", { try await $0.retriesWithinTheDeadline() }),
            ("leases", { try await $0.leasesFence() }), ("recovery", { try await $0.recoversAbandoned() }),
        ]
        for (name, scenario) in cases {
            let store = try await Self.store(server, database: name)
            try await scenario(WorkflowScenarios(store: store))
            await store.client.shutdown()
        }
    }

    @Test("sslmode=require: workflows over TLS")
    func tls() async throws {
        let server = try PostgresTestServer(tls: true)
        let store = try await Self.store(server, database: "secure", sslmode: "require")
        defer { Task { await store.client.shutdown() } }
        let ssl = try await store.client.query("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        #expect(try ssl.first?.decode("ssl", as: Bool.self) == true)
        try await WorkflowScenarios(store: store).qualifiesOnceAndReuses()
    }

    @Test("A database outage is waited out: writes made while it restarts land once it is back")
    func outage() async throws {
        let server = try PostgresTestServer()
        let store = try await Self.store(server, database: "outage")
        defer { Task { await store.client.shutdown() } }
        guard case .claimed = try await store.claim("o1", input: ["id": "o1"], owner: "w", lease: .seconds(30), version: "v") else {
            Issue.record("claim")
            return
        }
        server.stop()
        let restart = Task {
            try await Task.sleep(for: .milliseconds(800))
            try server.start()
        }
        try await store.record("o1", step: WorkflowStep(stage: .context, output: ["ok": true], codeVersion: "v", durationMs: 1), owner: "w", lease: .seconds(30))
        try await restart.value
        try await store.finish("o1", status: .qualified, output: ["done": true], error: nil, owner: "w", step: nil)
        let record = try await store.workflow("o1")
        #expect(record?.status == .qualified && record?.steps.count == 1)
    }
}

import Logging
@testable import Orchestrator
import PostgresClient
import Testing
import TestSupport
import WorkerJSON
import WorkerRuntimeTesting

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
            ("damaged", { try await $0.rerunsDamagedStages() }), ("heartbeat", { try await $0.finishesAheadOfItsHeartbeat() }),
            ("batches", { try await $0.queuesBatchesDurably() }),
        ]
        for (name, scenario) in cases {
            let store = try await Self.store(server, database: name)
            try await scenario(WorkflowScenarios(store: store))
            await store.client.shutdown()
        }
    }

    @Test("A NUL character: get_lead of \"L1\\u0000anything\" is an input error, not lead L1; the store's lookup is refused by the client; lead data with one is refused before jsonb sees it")
    func nulCharacters() async throws {
        let server = try PostgresTestServer()
        let store = try await Self.store(server, database: "nul")
        defer { Task { await store.client.shutdown() } }
        _ = try await WorkflowScenarios(store: store).workflow()
            .run(Fixtures.lead(["id": "L1", "title": "CEO"]), deadline: Fixtures.soon, logger: Fixtures.logger)
        #expect(try await store.workflow("L1") != nil)
        // libpq took "L1\0anything" as "L1": the lookup found lead L1.
        await #expect {
            _ = try await store.workflow("L1\u{0}anything")
        } throws: { ($0 as? PostgresError)?.parameterPosition == 1 }

        var configuration = Fixtures.configuration()
        configuration.database = PostgresConfiguration(url: server.url(database: "nul"), poolSize: 2)
        // A runtime per job: `test` shuts the handler, and so its database client, down after each.
        func run(_ input: JSONValue) async throws -> JobTestResult { try await Orchestrator.makeRuntime(configuration).test(input) }
        let shown = try await run(["action": "get_lead", "lead_id": "L1\u{0}anything"])
        #expect(shown.output == nil && shown.error?.contains("input.lead_id contains a NUL character") == true, "\(shown)")
        // jsonb refuses \u0000 (SQLSTATE 22P05): the job says which field instead.
        let refused = try await run(["action": "process_lead", "lead_data": ["id": "L2", "notes": "a\u{0}b"]])
        #expect(refused.error?.contains("input.lead_data.notes contains a NUL character") == true && refused.error?.contains("22P05") == false, "\(refused)")
        #expect(try await store.workflow("L2") == nil)
        let found = try await run(["action": "get_lead", "lead_id": "L1"])
        #expect(found.output?["lead_id"] == "L1" && found.output?["found"] == true)
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

    @Test("A write the server refuses (a full disk) fails the job with the server's reason; saved stages stay, the lead is handed back, and it finishes once writes work")
    func refusedWrites() async throws {
        let server = try PostgresTestServer()
        let store = try await Self.store(server, database: "diskfull")
        defer { Task { await store.client.shutdown() } }
        // PostgreSQL's own answer to a full disk (SQLSTATE 53100), given while `disk_full` names the stage.
        try server.psql(
            """
            CREATE TABLE disk_full (stage text);
            CREATE FUNCTION refuse_step() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF EXISTS (SELECT 1 FROM disk_full WHERE stage = NEW.stage) THEN
                    RAISE EXCEPTION 'could not extend file "base/16384/16390": No space left on device' USING ERRCODE = 'disk_full';
                END IF;
                RETURN NEW;
            END $$;
            CREATE TRIGGER refuse_step BEFORE INSERT ON orchestrator_steps FOR EACH ROW EXECUTE FUNCTION refuse_step();
            INSERT INTO disk_full VALUES ('enrichment');
            """, database: "diskfull")
        let scenarios = WorkflowScenarios(store: store)
        let llm = WorkflowScenarios.model()
        let lead = Fixtures.lead(Fixtures.strongLead)
        let first = scenarios.workflow(owner: "worker-a", llm: llm, memory: StubEndpoint("memory", Fixtures.memoryAnswer))
        await #expect {
            _ = try await first.run(lead, deadline: Fixtures.soon, logger: Fixtures.logger)
        } throws: { error in
            let text = "\(error)"
            return text.contains("No space left on device") && text.contains("53100")
        }
        let held = try #require(try await store.workflow(lead.id))
        #expect(held.status == .pending && held.owner == nil)
        // The memory stage ran beside enrichment: saved or not, depending on which finished first.
        #expect(Set(held.steps.map(\.stage)).isSuperset(of: [.context, .qualification]) && !held.steps.contains { $0.stage == .enrichment })

        try server.psql("DELETE FROM disk_full", database: "diskfull")
        let second = scenarios.workflow(owner: "worker-b", llm: llm, memory: StubEndpoint("memory", Fixtures.memoryAnswer))
        let result = try await second.run(lead, deadline: Fixtures.soon, logger: Fixtures.logger)
        #expect(result["status"] == "qualified" && result["resumed_after"]?.arrayValue?.prefix(2) == ["context", "qualification"])
        #expect(llm.asked("lead_qualification").count == 1 && llm.asked("lead_enrichment").count == 2)
        #expect(try await store.workflow(lead.id)?.steps.count == 5)
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

#if canImport(Glibc)
import Glibc
#endif
import EndpointAPI
import Foundation
import EndpointClient
import FakeContext7
import PostgresClient
import StubLLM
import Testing
import TestSupport
import WorkerJSON
import WorkerRuntimeTesting

/// `orchestrator --local` processes on a real PostgreSQL: migrations racing, a worker killed
/// between stages, the database restarted mid-batch, and the whole pipeline end to end with
/// `memory --local`, `context7 --local` (on a fake Context7) and a stub LLM.
@Suite(
    "orchestrator worker processes", .tags(.process, .servers), .pass(.servers), .serialized,
    .enabled(if: PostgresTestServer.isInstalled, "postgresql is installed by scripts/test.sh"))
struct OrchestratorProcessTests {
    private func client(_ worker: LocalWorker) throws -> EndpointClient {
        EndpointClient(endpoint: try Endpoint("\(worker.base)/v2/orchestrator", apiKey: nil))
    }

    private func query(_ server: PostgresTestServer, _ sql: String) async throws -> PostgresRows {
        let db = try PostgresClient(configuration: PostgresConfiguration(url: server.url(), poolSize: 1))
        defer { Task { await db.shutdown() } }
        return try await db.query(sql)
    }

    private func lead(_ index: Int, weak: Bool = false) -> JSONValue {
        [
            "id": .string("lead-\(index)"), "name": .string("Person \(index)"), "title": "VP of Sales", "company": .string("Company \(index)"),
            "company_size": 300, "industry": "Software", "email": .string(weak ? "p\(index)@gmail.com" : "p\(index)@company\(index).com"),
            "signals": ["pricing_page"],
        ]
    }

    @Test("Two workers starting at once on a new database apply the migrations once")
    func migrationsRace() async throws {
        let server = try PostgresTestServer()
        let env = ["DATABASE_URL": server.url()]
        async let first = LocalWorker.start("orchestrator", environment: env)
        async let second = LocalWorker.start("orchestrator", environment: env)
        let workers = try await [first, second]
        defer { for worker in workers { worker.stop() } }
        let applied = try await query(server, "SELECT count(*) AS n FROM schema_migrations")
        #expect(try applied.first?.decode("n", as: Int.self) == 1)
        for worker in workers {
            #expect(try await worker.runSync(["action": "process_lead", "lead_data": lead(1)])["output"]?["status"] == "qualified")
        }
        let rows = try await query(server, "SELECT count(*) AS n FROM orchestrator_workflows")
        #expect(try rows.first?.decode("n", as: Int.self) == 1, "one workflow for one lead id, whichever worker ran it")
    }

    @Test("A worker killed between stages: another takes the lead over after its lease and repeats no finished stage")
    func killedBetweenStages() async throws {
        let server = try PostgresTestServer()
        let llm = StubLLM()
        try await llm.run { base in
            let env = ["DATABASE_URL": server.url(), "LLM_BASE_URL": base, "WORKFLOW_LEASE": "1"]
            let doomed = try await LocalWorker.start("orchestrator", environment: env.merging(["LLM_MODEL": "slow-strategy"]) { $1 })
            let submitted = try await client(doomed).run(JobRequest(input: ["action": "process_lead", "lead_data": lead(7)]))
            #expect(submitted.status == .inQueue || submitted.status == .inProgress)
            // Killed while the strategy is being asked for: the four stages before it saved and its
            // request at the stub (which arrives a moment after the last save).
            try await waitUntil("the stages before the strategy saved and the strategy asked for", timeout: .seconds(20), every: .milliseconds(50)) {
                let rows = try await query(server, "SELECT count(*) AS n FROM orchestrator_steps WHERE lead_id = 'lead-7'")
                return try rows.first?.decode("n", as: Int.self) == 4 && llm.requests(for: "growth_strategy") >= 1
            }
            #expect(llm.requests(for: "growth_strategy") == 1)
            doomed.stop(SIGKILL)
            _ = try await doomed.process.wait()
            let before = try await query(server, "SELECT stage, completed_at::text AS at FROM orchestrator_steps WHERE lead_id = 'lead-7' ORDER BY stage")

            let survivor = try await LocalWorker.start("orchestrator", environment: env.merging(["LLM_MODEL": "stub"]) { $1 })
            defer { survivor.stop() }
            try await waitUntil("the survivor to finish lead-7", timeout: .seconds(30), every: .milliseconds(100)) {
                let rows = try await query(server, "SELECT status FROM orchestrator_workflows WHERE lead_id = 'lead-7'")
                return try rows.first?.decode("status", as: String.self) == "qualified"
            }
            #expect(llm.requests(for: "lead_qualification") == 1 && llm.requests(for: "lead_enrichment") == 1, "finished stages are not run again")
            #expect(llm.requests(for: "growth_strategy") == 2)
            let after = try await query(server, "SELECT stage, completed_at::text AS at FROM orchestrator_steps WHERE lead_id = 'lead-7' ORDER BY stage")
            #expect(after.count == 5)
            for row in before {
                let stage: String = try row.decode("stage")
                let kept = after.first { (try? $0.decode("stage", as: String.self)) == stage }
                #expect(try kept?.decode("at", as: String.self) == row.decode("at", as: String.self), "\(stage) was saved once")
            }
            let shown = try await survivor.runSync(["action": "get_lead", "lead_id": "lead-7"])
            #expect(shown["output"]?["status"] == "qualified" && shown["output"]?["attempts"] == 2)
            #expect(survivor.process.stderr.contains("Resuming lead lead-7"))
        }
    }

    @Test("The database restarted mid-batch: every lead still ends qualified or rejected, none failed or lost")
    func databaseRestartMidBatch() async throws {
        let server = try PostgresTestServer()
        let llm = StubLLM(latency: .milliseconds(20))
        try await llm.run { base in
            let worker = try await LocalWorker.start(
                "orchestrator", environment: ["DATABASE_URL": server.url(), "LLM_BASE_URL": base, "LLM_MODEL": "stub"])
            defer { worker.stop() }
            let leads = (0..<40).map { lead($0, weak: $0 % 4 == 0) }
            let endpoint = try client(worker)
            let job = try await endpoint.run(JobRequest(input: ["action": "batch_process", "leads": .array(leads), "concurrency": 4]))
            try await waitUntil("some leads to finish", timeout: .seconds(20), every: .milliseconds(20)) {
                let rows = try await query(server, "SELECT count(*) AS n FROM orchestrator_workflows WHERE status <> 'pending'")
                return try rows.first?.decode("n", as: Int.self) ?? 0 >= 4
            }
            server.stop()
            try await Task.sleep(for: .seconds(1))
            try server.start()
            var report = try await endpoint.status(job.id)
            let deadline = ContinuousClock.now + .seconds(60)
            while !report.status.isFinal, ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(200))
                report = try await endpoint.status(job.id)
            }
            #expect(report.status == .completed, "\(report)")
            let output = try #require(report.output)
            #expect(output["qualified"] == 30 && output["rejected"] == 10 && output["failed"] == 0, "\(output)")
            let rows = try await query(server, "SELECT status, count(*) AS n FROM orchestrator_workflows GROUP BY status ORDER BY status")
            #expect(try rows.map { "\(try $0.decode("status", as: String.self))=\(try $0.decode("n", as: Int.self))" } == ["qualified=30", "rejected=10"])
            #expect(worker.process.stderr.contains("PostgreSQL is unavailable"))
        }
    }

    @Test("End to end: memory, context7 (on a fake Context7), a stub LLM and the orchestrator; a batch through /run and /status")
    func endToEnd() async throws {
        let server = try PostgresTestServer()
        let fake = FakeContext7()
        let llm = StubLLM()
        try await withTemporaryDirectory("orchestrator-e2e") { directory in
        try await fake.run { context7Base in
            try await llm.run { llmBase in
                let memory = try await LocalWorker.start("memory", environment: ["MEMORY_DIR": directory.path])
                defer { memory.stop() }
                let context7 = try await LocalWorker.start("context7", environment: ["CONTEXT7_BASE_URL": context7Base])
                defer { context7.stop() }
                let orchestrator = try await LocalWorker.start(
                    "orchestrator",
                    environment: [
                        "DATABASE_URL": server.url(), "LLM_BASE_URL": llmBase, "LLM_MODEL": "stub", "CONTEXT7_LIBRARY": "/acme/widgets",
                        "CONTEXT7_ENDPOINT": "\(context7.base)/v2/context7", "MEMORY_ENDPOINT": "\(memory.base)/v2/memory",
                    ])
                defer { orchestrator.stop() }
                let leads = (0..<10).map { lead($0, weak: $0 >= 8) }
                let report = try await client(orchestrator).result(
                    of: JobRequest(input: ["action": "batch_process", "leads": .array(leads)]), within: .seconds(60), syncWait: .seconds(1))
                #expect(report.status == .completed, "\(report)")
                let output = try #require(report.output)
                #expect(output["total"] == 10 && output["qualified"] == 8 && output["rejected"] == 2, "\(output)")
                #expect(fake.callCount >= 1)
                #expect(llm.requests(for: "lead_qualification") == 10 && llm.requests(for: "growth_strategy") == 8)

                let stored = try await memory.runSync(["action": "get", "namespace": "leads", "key": "lead-0".withPrefix])
                #expect(stored["output"]?["memory"]?["content"]?.stringValue?.contains("Person 0") == true, "\(stored)")
                let shown = try await orchestrator.runSync(["action": "get_lead", "lead_id": "lead-0"])
                let stages = shown["output"]?["steps"]?.arrayValue?.compactMap { $0["stage"]?.stringValue }
                #expect(stages == ["context", "qualification", "enrichment", "memory", "strategy"])
                #expect(shown["output"]?["steps"]?[0]?["output"]?["found"] == true)
                #expect(shown["output"]?["steps"]?[1]?["output"]?["method"] == "llm" && shown["output"]?["output"]?["status"] == "qualified")
            }
        }
        }
    }
}

private extension String {
    var withPrefix: JSONValue { .string("lead:" + self) }
}

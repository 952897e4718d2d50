import EndpointClient
@testable import Orchestrator
import PostgresClient
import Synchronization
import Testing
import TestSupport
import WorkerJSON
import WorkerRuntime
import WorkerRuntimeTesting

@Suite("The orchestrator handler: jobs, batches, settings", .defaultPass)
struct OrchestratorHandlerTests {
    @Test("A batch reports every lead on its own (bad ones too), keeps to its concurrency and posts progress")
    func batch() async throws {
        let active = Atomic<Int>(0)
        let peak = Atomic<Int>(0)
        let context7 = StubEndpoint("context7") { input, call in
            let now = active.add(1, ordering: .relaxed).newValue
            peak.max(now, ordering: .relaxed)
            try await Task.sleep(for: .milliseconds(10))
            active.subtract(1, ordering: .relaxed)
            return try await Fixtures.context7Answer(input, call)
        }
        // No reuse of fetched documentation here: every lead's context call is counted.
        let handler = try Orchestrator.makeHandler(
            Fixtures.configuration { $0.contextCacheTTL = .zero }, context7: context7, memory: StubEndpoint("memory", Fixtures.memoryAnswer))
        try await handler.start()
        var leads: [Result<Lead, OrchestratorError>] = (0..<12).map { .success(Fixtures.lead(Fixtures.strongLead.replacing("id", .string("b\($0)")))) }
        leads.append(.success(Fixtures.lead(Fixtures.weakLead)))
        leads.append(.failure(.input("input.leads[13].id is missing")))
        leads.append(.success(Fixtures.lead(Fixtures.strongLead.replacing("id", "b0"))))
        let progress = Mutex<[JSONValue]>([])
        let context = JobContext.testing(job: Job(id: "batch", input: [:]), progress: { value in progress.withLock { $0.append(value) } })
        let report = try await handler.batch(leads, concurrency: 3, deadline: Fixtures.soon, context: context)
        try await handler.shutdown()
        #expect(report["total"] == 15 && report["qualified"] == 13 && report["rejected"] == 1 && report["invalid"] == 1 && report["failed"] == 0)
        let rows = try #require(report["leads"]?.arrayValue)
        #expect(rows[12]["status"] == "rejected" && rows[13]["error"] == "input.leads[13].id is missing")
        #expect(rows[0]["lead_id"] == "b0" && rows[0]["score"] == 1.0)
        #expect(peak.load(ordering: .relaxed) <= 3 && peak.load(ordering: .relaxed) >= 2)
        #expect(context7.calls.count == 13, "the duplicate b0 ran once")
        #expect(!progress.withLock { $0 }.isEmpty)
    }

    @Test("Documentation is fetched once per question: concurrent leads share the call, failures are not kept, the TTL ends reuse")
    func contextReuse() async throws {
        let failNext = Atomic<Bool>(true)
        let context7 = StubEndpoint("context7") { input, call in
            try await Task.sleep(for: .milliseconds(20))
            if failNext.exchange(false, ordering: .relaxed) { throw StubFailure(description: "cold start") }
            return try await Fixtures.context7Answer(input, call)
        }
        let pipeline = LeadPipeline(
            configuration: Fixtures.configuration { $0.downstreamRetries = 0 }, llm: nil, context7: context7, memory: nil)
        let software = Fixtures.lead(Fixtures.strongLead)
        await #expect(throws: OrchestratorError.self) { _ = try await pipeline.context(software, deadline: Fixtures.soon, logger: Fixtures.logger) }
        try await withThrowingTaskGroup(of: JSONValue.self) { group in
            for _ in 0..<16 { group.addTask { try await pipeline.context(software, deadline: Fixtures.soon, logger: Fixtures.logger) } }
            for try await answer in group { #expect(answer["content"] == "Serverless GPUs scale to zero.") }
        }
        #expect(context7.calls.count == 2, "one failed call, then one shared by 16 leads")
        _ = try await pipeline.context(Fixtures.lead(Fixtures.weakLead), deadline: Fixtures.soon, logger: Fixtures.logger)
        #expect(context7.calls.count == 3 && context7.calls[2]["query"] == "How do Agriculture companies use serverless GPUs?")

        let brief = LeadPipeline(configuration: Fixtures.configuration { $0.contextCacheTTL = .milliseconds(50) }, llm: nil, context7: context7, memory: nil)
        _ = try await brief.context(software, deadline: Fixtures.soon, logger: Fixtures.logger)
        try await Task.sleep(for: .milliseconds(80))
        _ = try await brief.context(software, deadline: Fixtures.soon, logger: Fixtures.logger)
        #expect(context7.calls.count == 5)
    }

    @Test("Through the runtime: process_lead, get_lead, malformed jobs named, a failed stage fails the job with stage and reason")
    func throughTheRuntime() async throws {
        let down = StubEndpoint("memory") { _, _ in throw StubFailure(description: "connection refused") }
        let runtime = try Orchestrator.makeRuntime(Fixtures.configuration { $0.downstreamRetries = 0 }, memory: down)
        let processed = try await runtime.test(["action": "process_lead", "lead_data": Fixtures.strongLead])
        #expect(processed.error?.contains("memory stage: store on memory failed: connection refused") == true, "\(processed)")
        let missing = try await runtime.test(["action": "get_lead", "lead_id": "nobody"])
        #expect(missing.output == ["found": false, "lead_id": "nobody"])
        let malformed = try await runtime.test(["action": "process_lead", "lead_data": ["name": "x"]])
        #expect(malformed.error?.contains("input.lead_data.id is missing") == true)

        let ok = try Orchestrator.makeRuntime(Fixtures.configuration())
        let rejected = try await ok.test(["action": "process_lead", "lead_data": Fixtures.weakLead])
        #expect(rejected.output?["status"] == "rejected")
    }

    @Test("get_lead shows status, score, error and each stage")
    func getLead() async throws {
        let handler = try Orchestrator.makeHandler(Fixtures.configuration())
        try await handler.start()
        _ = try await handler.process(Fixtures.lead(Fixtures.strongLead), deadline: Fixtures.soon, logger: Fixtures.logger)
        let shown = try #require(try await handler.store.workflow("L-strong")).json
        try await handler.shutdown()
        #expect(shown["status"] == "qualified" && shown["score"] == 1.0 && shown["found"] == true)
        #expect(shown["steps"]?.arrayValue?.compactMap { $0["stage"]?.stringValue } == ["context", "qualification", "enrichment", "memory", "strategy"])
        #expect(shown["input"]?["name"] == "Ada Lovelace")
    }

    @Test("Settings from the environment; bad values are named")
    func settings() throws {
        let configuration = try OrchestratorConfiguration.fromEnvironment([
            "CONTEXT7_ENDPOINT": "http://127.0.0.1:9000/v2/ctx", "MEMORY_ENDPOINT": "abc123", "RUNPOD_API_KEY": "rk",
            "QUALIFICATION_THRESHOLD": "0.7", "BATCH_CONCURRENCY": "16", "WORKFLOW_LEASE": "2.5", "WORKFLOW_VERSION": "v9",
            "DATABASE_URL": "postgresql://u:secret@db:5432/leads?sslmode=require", "WORKFLOW_RECOVERY": "off",
        ])
        #expect(configuration.context7?.baseURL == "http://127.0.0.1:9000/v2/ctx" && configuration.memory?.baseURL == "https://api.runpod.ai/v2/abc123")
        #expect(configuration.memory?.apiKey == "rk" && configuration.threshold == 0.7 && configuration.batchConcurrency == 16)
        #expect(configuration.lease == .milliseconds(2500) && configuration.codeVersion == "v9" && !configuration.recovery)
        #expect(configuration.database?.server == "db:5432/leads" && configuration.llm == nil)
        for (name, value) in [
            ("QUALIFICATION_THRESHOLD", "1.5"), ("BATCH_CONCURRENCY", "0"), ("WORKFLOW_LEASE", "x"), ("CONTEXT7_ENDPOINT", "ftp://x"),
            ("CONTEXT7_LIBRARY", "react"), ("DATABASE_URL", "postgresql://u:secret@h/x?nosuchoption=1"), ("WORKFLOW_RECOVERY", "maybe"),
            ("LLM_BASE_URL", "http://llm"),
        ] {
            do {
                _ = try OrchestratorConfiguration.fromEnvironment([name: value])
                Issue.record("\(name)=\(value) must be refused")
            } catch {
                #expect("\(error)".contains(name == "LLM_BASE_URL" ? "LLM_MODEL" : name) && !"\(error)".contains("secret"), "\(error)")
            }
        }
    }
}

@testable import Orchestrator
import Synchronization
import Testing
import TestSupport
import WorkerJSON
import WorkerRuntime
import WorkerRuntimeTesting

/// `batch_process` is durable from the start, `get_batch` rebuilds its report, and NUL
/// characters are input errors (in memory; the same against PostgreSQL and through killed
/// worker processes in the servers pass).
@Suite("Batches: recorded before they start, handed back when stopped, rebuilt by get_batch", .defaultPass)
struct BatchTests {
    @Test("The store's batch rules: every lead pending before any starts, held while its worker lives, recovered once after, failed leads queued again")
    func storeRules() async throws { try await WorkflowScenarios(store: InMemoryWorkflowStore()).queuesBatchesDurably() }

    @Test("batch_process records every lead (pending) before the first one starts")
    func recordsBeforeStarting() async throws {
        let storeBox = Mutex<(any WorkflowStore)?>(nil)
        let seen = Mutex<[WorkflowStatus?]>([])
        // The first lead's first stage looks at what the store holds for the whole batch.
        let context7 = StubEndpoint("context7") { input, call in
            if call == 1, let store = storeBox.withLock({ $0 }) {
                var statuses: [WorkflowStatus?] = []
                for index in 0..<6 { statuses.append(try await store.workflow("r\(index)")?.status) }
                seen.withLock { $0 = statuses }
            }
            return try await Fixtures.context7Answer(input, call)
        }
        let handler = try Orchestrator.makeHandler(
            Fixtures.configuration { $0.contextCacheTTL = .zero }, context7: context7, memory: StubEndpoint("memory", Fixtures.memoryAnswer))
        storeBox.withLock { $0 = handler.store }
        try await handler.start()
        let leads: [Result<Lead, OrchestratorError>] = (0..<6).map { .success(Fixtures.lead(Fixtures.strongLead.replacing("id", .string("r\($0)")))) }
        let report = try await handler.batch(
            leads, concurrency: 1, deadline: Fixtures.soon, context: JobContext.testing(job: Job(id: "batch-r", input: [:])))
        let rebuilt = try #require(try await handler.store.batch("batch-r")).json
        try await handler.shutdown()
        #expect(seen.withLock { $0 } == [WorkflowStatus?](repeating: .pending, count: 6), "all six were recorded when the first started")
        #expect(report["batch_id"] == "batch-r" && report["qualified"] == 6 && report["pending"] == 0, "\(report)")
        #expect(rebuilt["qualified"] == 6 && rebuilt["finished"] == true && rebuilt["leads"]?[5]?["lead_id"] == "r5", "\(rebuilt)")
        #expect(rebuilt["leads"]?[0]?["attempts"] == 1, "the batch's own claim is the lead's first start")
    }

    @Test("A batch job stopped mid-way hands the leads it had not started back at once: pending, no owner, for recovery")
    func stoppedBatch() async throws {
        let entered = AsyncSignalBox()
        let memory = StubEndpoint("memory") { input, call in
            entered.open()
            try await Task.sleep(for: .seconds(30))
            return try await Fixtures.memoryAnswer(input, call)
        }
        let handler = try Orchestrator.makeHandler(Fixtures.configuration { $0.recovery = false }, memory: memory)
        try await handler.start()
        let leads: [Result<Lead, OrchestratorError>] = (0..<4).map { .success(Fixtures.lead(Fixtures.strongLead.replacing("id", .string("s\($0)")))) }
        let job = Task {
            try await handler.batch(leads, concurrency: 1, deadline: Fixtures.soon, context: JobContext.testing(job: Job(id: "batch-s", input: [:])))
        }
        await entered.wait()
        job.cancel()
        let report = try await withTimeout(.seconds(10), "the stopped batch to return") { try await job.value }
        for index in 0..<4 {
            let record = try #require(try await handler.store.workflow("s\(index)"))
            #expect(record.status == .pending && record.owner == nil, "s\(index): \(record.status) owned by \(record.owner ?? "nobody")")
        }
        #expect(report["pending"] == 3 && report["leads"]?[1]?["status"] == "pending", "\(report)")
        let rebuilt = try #require(try await handler.store.batch("batch-s")).json
        #expect(rebuilt["pending"] == 4 && rebuilt["finished"] == false)
        try await handler.shutdown()
    }

    @Test("Through the runtime: get_batch rebuilds a batch's report by its job's id; an unknown id says so; NUL characters are input errors naming the field")
    func throughTheRuntime() async throws {
        let runtime = try Orchestrator.makeRuntime(Fixtures.configuration(), memory: StubEndpoint("memory", Fixtures.memoryAnswer))
        let leads: JSONValue = [Fixtures.strongLead, Fixtures.weakLead, ["name": "no id"], ["id": "nul", "title": "VP\u{0}Sales"]]
        let ran = try await runtime.test(["action": "batch_process", "leads": leads], id: "job-42")
        let output = try #require(ran.output, "\(ran)")
        #expect(output["batch_id"] == "job-42" && output["qualified"] == 1 && output["rejected"] == 1 && output["invalid"] == 2, "\(output)")
        #expect(output["leads"]?[3]?["error"]?.stringValue?.contains("input.leads[3].title contains a NUL character") == true, "\(output)")

        let shown = try await runtime.test(["action": "get_batch", "batch_id": "job-42"])
        let rebuilt = try #require(shown.output, "\(shown)")
        #expect(rebuilt["total"] == 4 && rebuilt["qualified"] == 1 && rebuilt["rejected"] == 1 && rebuilt["invalid"] == 2, "\(rebuilt)")
        #expect(rebuilt["finished"] == true && rebuilt["leads"]?[0]?["lead_id"] == "L-strong" && rebuilt["leads"]?[1]?["status"] == "rejected")
        #expect(try await runtime.test(["action": "get_batch", "batch_id": "job-7"]).output == ["found": false, "batch_id": "job-7"])

        for (input, field) in [
            (["action": "process_lead", "lead_data": ["id": "L1\u{0}anything"]] as JSONValue, "input.lead_data.id"),
            (["action": "process_lead", "lead_data": ["id": "L1", "notes": ["ok", "a\u{0}b"]]], "input.lead_data.notes[1]"),
            (["action": "process_lead", "lead_data": ["id": "L1", "x\u{0}y": 1]], "a key of input.lead_data"),
            (["action": "get_lead", "lead_id": "L1\u{0}anything"], "input.lead_id"),
            (["action": "get_batch", "batch_id": "job\u{0}42"], "input.batch_id"),
        ] {
            let refused = try await runtime.test(input)
            #expect(refused.output == nil && refused.error?.contains("\(field) contains a NUL character") == true, "\(refused)")
        }
    }

    @Test("NUL characters in requests: refused with the field's path; a batch's lead with one is reported on its own")
    func nulInRequests() throws {
        #expect(JSONValue.object(["a": ["b": [1, "x\u{0}"]]]).nulPath(below: "input") == "input.a.b[1]")
        #expect(JSONValue.object(["a": "clean", "b": [true, 2.5, .null]]).containsNUL == false)
        guard case .batchProcess(let leads, _) = try OrchestratorRequest.parse(["action": "batch_process", "leads": [["id": "a"], ["id": "b\u{0}"]]]) else {
            Issue.record("not a batch")
            return
        }
        #expect((try? leads[0].get())?.id == "a")
        if case .failure(let error) = leads[1] {
            #expect(error.isInputError && error.description.contains("input.leads[1].id contains a NUL character"), "\(error)")
        } else {
            Issue.record("the lead with a NUL must be refused")
        }
        #expect(try OrchestratorRequest.parse(["action": "get_batch", "batch_id": " job-1 "]) == .getBatch("job-1"))
        #expect(throws: OrchestratorError.self) { try OrchestratorRequest.parse(["action": "get_batch"]) }
    }
}

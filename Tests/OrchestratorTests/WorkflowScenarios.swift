@testable import Orchestrator
import EndpointClient
import Synchronization
import Testing
import WorkerJSON

/// The durable-workflow rules, run against any store: in memory in the default pass, PostgreSQL
/// in the servers pass.
struct WorkflowScenarios {
    let store: any WorkflowStore

    func workflow(
        owner: String = "worker-a", llm: (any LanguageModel)? = nil, context7: (any JobEndpoint)? = nil, memory: (any JobEndpoint)? = nil,
        _ change: (inout OrchestratorConfiguration) -> Void = { _ in }
    ) -> LeadWorkflow {
        LeadWorkflow(
            pipeline: LeadPipeline(configuration: Fixtures.configuration(change), llm: llm, context7: context7, memory: memory),
            store: store, owner: owner)
    }

    static let qualification = #"{"score": 0.9, "reasons": ["fits"], "bant": {"budget": "b", "authority": "a", "need": "n", "timeline": "t"}}"#
    static let enrichment = #"{"company_summary": "s", "company_size_band": "201-1000", "pain_points": ["p"], "talking_points": ["t"]}"#
    static let strategy = #"{"priority": "high", "approach": "a", "channels": ["email"], "next_steps": ["call"]}"#

    /// A model answering each schema validly, counting questions per schema.
    static func model() -> ScriptedSchemaModel { ScriptedSchemaModel() }

    func qualifiesOnceAndReuses() async throws {
        let context7 = StubEndpoint("context7", Fixtures.context7Answer)
        let memory = StubEndpoint("memory", Fixtures.memoryAnswer)
        let llm = Self.model()
        let flow = workflow(llm: llm, context7: context7, memory: memory)
        let result = try await flow.run(Fixtures.lead(Fixtures.strongLead), deadline: Fixtures.soon, logger: Fixtures.logger)
        #expect(result["status"] == "qualified" && result["score"] == 0.9)
        #expect(result["stages"]?["qualification"]?["method"] == "llm" && result["stages"]?["strategy"]?["priority"] == "high")
        #expect(result["stages"]?["context"]?["content"] == "Serverless GPUs scale to zero.")
        let stored = try #require(try await store.workflow("L-strong"))
        #expect(stored.status == .qualified && stored.steps.count == 5 && stored.owner == nil)
        #expect(stored.steps.allSatisfy { $0.codeVersion == Orchestrator.codeVersion })
        #expect(memory.calls.count == 1 && memory.calls[0]["key"] == "lead:L-strong" && memory.calls[0]["namespace"] == "leads")
        // The context went into the prompt.
        #expect(llm.asked("lead_qualification").first?.messages.last?.content.contains("Serverless GPUs") == true)

        let again = try await flow.run(Fixtures.lead(Fixtures.strongLead), deadline: Fixtures.soon, logger: Fixtures.logger)
        #expect(again["reused"] == true && again["status"] == "qualified" && again["stages"] == result["stages"])
        #expect(context7.calls.count == 1 && memory.calls.count == 1 && llm.count == 3)
    }

    func rejectsBelowThreshold() async throws {
        let memory = StubEndpoint("memory", Fixtures.memoryAnswer)
        let flow = workflow(memory: memory)
        let result = try await flow.run(Fixtures.lead(Fixtures.weakLead), deadline: Fixtures.soon, logger: Fixtures.logger)
        #expect(result["status"] == "rejected" && result["score"] == 0.0 && result["threshold"] == 0.5)
        #expect(result["reasons"]?.arrayValue?.isEmpty == false)
        let stored = try #require(try await store.workflow("L-weak"))
        #expect(stored.status == .rejected && stored.steps.map(\.stage) .sorted { $0.rawValue < $1.rawValue } == [.context, .qualification])
        #expect(memory.calls.isEmpty)
    }

    /// A stage that keeps failing fails the lead (stage and reason recorded); a retry resumes
    /// after the saved stages and runs none of them again.
    func resumesWithoutRepeating() async throws {
        let context7 = StubEndpoint("context7", Fixtures.context7Answer)
        let memoryUp = Atomic<Bool>(false)
        let memory = StubEndpoint("memory") { input, call in
            guard memoryUp.load(ordering: .relaxed) else { throw StubFailure(description: "memory endpoint is down (call \(call))") }
            return try await Fixtures.memoryAnswer(input, call)
        }
        let llm = Self.model()
        let flow = workflow(llm: llm, context7: context7, memory: memory) { $0.downstreamRetries = 1 }
        let lead = Fixtures.lead(Fixtures.strongLead)
        await #expect {
            _ = try await flow.run(lead, deadline: Fixtures.soon, logger: Fixtures.logger)
        } throws: { error in
            let error = error as? OrchestratorError
            return error?.stage == .memory && error?.reason.contains("memory endpoint is down") == true && error?.reason.contains("after 2 tries") == true
        }
        let failed = try #require(try await store.workflow(lead.id))
        #expect(failed.status == .failed && failed.error?["stage"] == "memory" && failed.owner == nil)
        #expect(Set(failed.steps.map(\.stage)) == [.context, .qualification, .enrichment])

        memoryUp.store(true, ordering: .relaxed)
        let result = try await flow.run(lead, deadline: Fixtures.soon, logger: Fixtures.logger)
        #expect(result["status"] == "qualified" && result["attempts"] == 2)
        #expect(result["resumed_after"] == ["context", "qualification", "enrichment"])
        #expect(context7.calls.count == 1 && llm.asked("lead_qualification").count == 1 && llm.asked("lead_enrichment").count == 1)
        #expect(memory.calls.count == 3)
    }

    /// A saved stage that cannot be used (a score that is not a number, as a hand edit or a bug
    /// could leave it) is run again and its new output replaces the row, instead of passing for a
    /// score of 0; the sound stage before it is kept.
    func rerunsDamagedStages() async throws {
        let lead = Fixtures.lead(Fixtures.strongLead)
        let version = Orchestrator.codeVersion
        guard case .claimed = try await store.claim(lead.id, input: lead.data, owner: "worker-old", lease: .seconds(30), version: version) else {
            Issue.record("the first claim failed")
            return
        }
        for (stage, output) in [(LeadStage.context, ["skipped": "no context"] as JSONValue), (.qualification, ["score": "high", "reasons": []])] {
            try await store.record(
                lead.id, step: WorkflowStep(stage: stage, output: output, codeVersion: version, durationMs: 1), owner: "worker-old", lease: .seconds(30))
        }
        try await store.release(lead.id, owner: "worker-old")

        let llm = Self.model()
        let flow = workflow(llm: llm, memory: StubEndpoint("memory", Fixtures.memoryAnswer))
        let result = try await flow.run(lead, deadline: Fixtures.soon, logger: Fixtures.logger)
        #expect(result["status"] == "qualified" && result["score"] == 0.9)
        #expect(result["resumed_after"] == ["context"] && result["rerun_damaged"] == ["qualification"])
        #expect(llm.asked("lead_qualification").count == 1)
        let stored = try #require(try await store.workflow(lead.id))
        #expect(stored.status == .qualified && stored.steps.count == 5)
        #expect(stored.steps.first { $0.stage == .qualification }?.output["score"] == 0.9)
        #expect(stored.steps.first { $0.stage == .context }?.output == ["skipped": "no context"])
        #expect(LeadStage.qualification.damage(in: ["score": "high", "reasons": []]) == #"score is "high", not a number from 0 to 1"#)
        #expect(LeadStage.qualification.damage(in: ["score": 1.5, "reasons": []]) == "score is 1.5, not a number from 0 to 1")
        #expect(LeadStage.qualification.damage(in: ["score": 0.5, "reasons": [1]]) == "reasons is not a list of strings")
        #expect(LeadStage.enrichment.damage(in: "text") == "not a JSON object")
    }

    /// A heartbeat that renews right after the run saved its outcome (which ends the lease) finds
    /// the lease gone: the run still returns its result, not a lease lost to another worker. The
    /// store's `finish` returns 400 ms after saving, eight heartbeat periods (a third of 150 ms).
    func finishesAheadOfItsHeartbeat() async throws {
        let slow = SlowFinishStore(inner: store, pause: .milliseconds(400))
        let flow = LeadWorkflow(
            pipeline: LeadPipeline(
                configuration: Fixtures.configuration { $0.lease = .milliseconds(150) }, llm: nil, context7: nil,
                memory: StubEndpoint("memory", Fixtures.memoryAnswer)),
            store: slow, owner: "worker-a")
        for lead in [Fixtures.strongLead.replacing("id", "ends-qualified"), Fixtures.weakLead.replacing("id", "ends-rejected")] {
            let result = try await flow.run(Fixtures.lead(lead), deadline: Fixtures.soon, logger: Fixtures.logger)
            #expect(result["status"] == (lead["id"] == "ends-qualified" ? "qualified" : "rejected"))
        }
    }

    func retriesWithinTheDeadline() async throws {
        let context7 = StubEndpoint("context7") { input, call in
            if call < 3 { throw StubFailure(description: "503 from context7") }
            return try await Fixtures.context7Answer(input, call)
        }
        let flow = workflow(context7: context7)
        let result = try await flow.run(Fixtures.lead(["id": "retry", "title": "CEO", "company_size": 300, "industry": "SaaS"]), deadline: Fixtures.soon, logger: Fixtures.logger)
        #expect(result["status"] == "qualified" && context7.calls.count == 3)

        // A deadline too close for the next pause ends the stage early.
        let stuck = StubEndpoint("context7") { _, _ in throw StubFailure(description: "still down") }
        let slow = workflow(context7: stuck) { $0.retrySchedule.initial = .seconds(5); $0.retrySchedule.cap = .seconds(5); $0.downstreamRetries = 10 }
        let started = ContinuousClock.now
        await #expect {
            _ = try await slow.run(Fixtures.lead(["id": "deadline"]), deadline: .now + .seconds(1), logger: Fixtures.logger)
        } throws: { ($0 as? OrchestratorError)?.stage == .context }
        #expect(ContinuousClock.now - started < .seconds(4) && stuck.calls.count == 1)
    }

    /// Leases: a live owner's lead is busy for others; once its lease runs out another worker
    /// takes it, and the first one's writes are refused.
    func leasesFence() async throws {
        let lease: Duration = .milliseconds(300)
        guard case .claimed = try await store.claim("fenced", input: ["id": "fenced"], owner: "a", lease: lease, version: "v") else {
            Issue.record("a must claim")
            return
        }
        guard case .busy(let owner) = try await store.claim("fenced", input: ["id": "fenced"], owner: "b", lease: lease, version: "v") else {
            Issue.record("b must find it busy")
            return
        }
        #expect(owner == "a")
        try await store.record("fenced", step: WorkflowStep(stage: .context, output: ["n": 1], codeVersion: "v", durationMs: 1), owner: "a", lease: lease)
        try await Task.sleep(for: .milliseconds(450))
        guard case .claimed(let taken) = try await store.claim("fenced", input: ["id": "fenced"], owner: "b", lease: .seconds(30), version: "v") else {
            Issue.record("b must take it over")
            return
        }
        #expect(taken.steps.map(\.stage) == [.context] && taken.attempts == 2)
        #expect(try await store.renew("fenced", owner: "a", lease: lease) == false)
        await #expect { try await store.record("fenced", step: WorkflowStep(stage: .qualification, output: [:], codeVersion: "v", durationMs: 1), owner: "a", lease: lease) } throws: {
            ($0 as? OrchestratorError)?.isLeaseLost == true
        }
        await #expect { try await store.finish("fenced", status: .qualified, output: [:], error: nil, owner: "a", step: nil) } throws: {
            ($0 as? OrchestratorError)?.isLeaseLost == true
        }
        // The owner saving a stage again (a damaged row run again) replaces it.
        try await store.record("fenced", step: WorkflowStep(stage: .context, output: ["n": 2], codeVersion: "v", durationMs: 1), owner: "b", lease: lease)
        #expect(try await store.workflow("fenced")?.steps.filter { $0.stage == .context }.map(\.output) == [["n": 2]])
    }

    /// A dead worker's pending workflow is taken over by a live one, once, and finished from its
    /// last saved stage; one taken over too often is a dead letter.
    func recoversAbandoned() async throws {
        let version = Orchestrator.codeVersion
        guard case .claimed = try await store.claim("orphan", input: Fixtures.strongLead.replacing("id", "orphan"), owner: "dead", lease: .milliseconds(100), version: version) else {
            Issue.record("claim")
            return
        }
        let savedQualification = try JSONValue.parse(Array(Self.qualification.utf8))
        try await store.record("orphan", step: WorkflowStep(stage: .context, output: ["skipped": "x"], codeVersion: version, durationMs: 1), owner: "dead", lease: .milliseconds(100))
        try await store.record("orphan", step: WorkflowStep(stage: .qualification, output: savedQualification, codeVersion: version, durationMs: 1), owner: "dead", lease: .milliseconds(100))
        // Another version's orphan is left alone.
        _ = try await store.claim("other-version", input: ["id": "other-version"], owner: "dead", lease: .milliseconds(100), version: "orchestrator-0")
        try await Task.sleep(for: .milliseconds(200))

        let llm = Self.model()
        let inFlight = InFlightLeads()
        let first = WorkflowRecovery(workflow: workflow(owner: "alive-1", llm: llm), inFlight: inFlight, logger: Fixtures.logger)
        let second = WorkflowRecovery(workflow: workflow(owner: "alive-2", llm: llm), inFlight: InFlightLeads(), logger: Fixtures.logger)
        async let a = first.recoverOnce()
        async let b = second.recoverOnce()
        let (fromFirst, fromSecond) = await (a, b)
        #expect(fromFirst + fromSecond == ["orphan"], "taken over exactly once")
        #expect(try await store.pendingOfOtherVersions(than: version) == 1)
        var record = try await store.workflow("orphan")
        for _ in 0..<200 where record?.status == .pending {
            try await Task.sleep(for: .milliseconds(20))
            record = try await store.workflow("orphan")
        }
        #expect(record?.status == .qualified && record?.attempts == 2)
        #expect(llm.asked("lead_qualification").isEmpty, "the saved qualification was not asked again")
        #expect(record?.output?["score"] == 0.9)

        _ = try await store.claim("cursed", input: ["id": "cursed"], owner: "dead", lease: .milliseconds(1), version: version)
        let strict = WorkflowRecovery(workflow: workflow(owner: "alive-3") { $0.maxRecoveries = 0 }, inFlight: InFlightLeads(), logger: Fixtures.logger)
        try await Task.sleep(for: .milliseconds(20))
        #expect(await strict.recoverOnce().isEmpty)
        let cursed = try await store.workflow("cursed")
        #expect(cursed?.status == .failed && cursed?.error?["stage"] == "recovery")
    }
}

/// Answers each of the orchestrator's schemas validly; counts questions per schema.
final class ScriptedSchemaModel: LanguageModel {
    let name = "schema-stub"
    private let asked = Mutex<[ChatRequest]>([])

    var count: Int { asked.withLock { $0.count } }
    func asked(_ schema: String) -> [ChatRequest] { asked.withLock { $0.filter { $0.schemaName == schema } } }

    func complete(_ request: ChatRequest, deadline: ContinuousClock.Instant) async throws -> ChatAnswer {
        asked.withLock { $0.append(request) }
        let content = switch request.schemaName {
        case "lead_qualification": WorkflowScenarios.qualification
        case "lead_enrichment": WorkflowScenarios.enrichment
        default: WorkflowScenarios.strategy
        }
        return ChatAnswer(content: content, refusal: nil, finishReason: "stop")
    }
}

extension JSONValue {
    func replacing(_ key: String, _ value: JSONValue) -> JSONValue {
        guard case .object(var fields) = self else { return self }
        fields[key] = value
        return .object(fields)
    }
}

/// A store whose `finish` returns `pause` after it saved the outcome: the window in which a
/// heartbeat finds its lease ended by its own run.
final class SlowFinishStore: WorkflowStore {
    let inner: any WorkflowStore
    let pause: Duration

    init(inner: any WorkflowStore, pause: Duration) {
        self.inner = inner
        self.pause = pause
    }

    var description: String { inner.description }
    func prepare() async throws { try await inner.prepare() }
    func claim(_ leadID: String, input: JSONValue, owner: String, lease: Duration, version: String) async throws -> WorkflowClaim {
        try await inner.claim(leadID, input: input, owner: owner, lease: lease, version: version)
    }
    func record(_ leadID: String, step: WorkflowStep, owner: String, lease: Duration) async throws {
        try await inner.record(leadID, step: step, owner: owner, lease: lease)
    }
    func renew(_ leadID: String, owner: String, lease: Duration) async throws -> Bool {
        try await inner.renew(leadID, owner: owner, lease: lease)
    }
    func finish(_ leadID: String, status: WorkflowStatus, output: JSONValue?, error: JSONValue?, owner: String, step: WorkflowStep?) async throws {
        try await inner.finish(leadID, status: status, output: output, error: error, owner: owner, step: step)
        try await Task.sleep(for: pause)
    }
    func release(_ leadID: String, owner: String) async throws { try await inner.release(leadID, owner: owner) }
    func claimAbandoned(owner: String, lease: Duration, version: String, limit: Int) async throws -> [WorkflowRecord] {
        try await inner.claimAbandoned(owner: owner, lease: lease, version: version, limit: limit)
    }
    func pendingOfOtherVersions(than version: String) async throws -> Int { try await inner.pendingOfOtherVersions(than: version) }
    func workflow(_ leadID: String) async throws -> WorkflowRecord? { try await inner.workflow(leadID) }
    func enqueue(_ batch: BatchRecord, leads: [Lead], owner: String, lease: Duration, version: String) async throws {
        try await inner.enqueue(batch, leads: leads, owner: owner, lease: lease, version: version)
    }
    func renewAll(_ leadIDs: [String], owner: String, lease: Duration) async throws {
        try await inner.renewAll(leadIDs, owner: owner, lease: lease)
    }
    func releaseAll(_ leadIDs: [String], owner: String) async throws { try await inner.releaseAll(leadIDs, owner: owner) }
    func batch(_ batchID: String) async throws -> BatchRecord? { try await inner.batch(batchID) }
}

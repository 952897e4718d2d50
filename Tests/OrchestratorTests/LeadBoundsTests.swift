@testable import Orchestrator
import Testing
import TestSupport
import WorkerJSON

@Suite("What a lead keeps: stage outputs of bounded size, one lead per id however it is spelled", .defaultPass)
struct LeadBoundsTests {
    private func workflow(
        _ store: any WorkflowStore, context7: (any JobEndpoint)? = nil, memory: (any JobEndpoint)? = nil
    ) -> LeadWorkflow {
        LeadWorkflow(
            pipeline: LeadPipeline(configuration: Fixtures.configuration(), llm: nil, context7: context7, memory: memory),
            store: store, owner: "worker-a")
    }

    @Test("A 20 MB downstream answer fails its stage naming the endpoint and the size; it is not saved; the next run is not poisoned")
    func oversizedAnswer() async throws {
        let huge = String(repeating: "x", count: 20 << 20)
        let context7 = StubEndpoint("https://context7.example/v2/ctx") { input, call in
            if call == 1 { return ["library_id": input["library_id"] ?? .null, "content": .string(huge), "found": true] }
            return try await Fixtures.context7Answer(input, call)
        }
        let store = InMemoryWorkflowStore()
        let flow = workflow(store, context7: context7, memory: StubEndpoint("memory", Fixtures.memoryAnswer))
        let lead = Fixtures.lead(Fixtures.strongLead)
        await #expect {
            _ = try await flow.run(lead, deadline: Fixtures.soon, logger: Fixtures.logger)
        } throws: { error in
            guard let error = error as? OrchestratorError else { return false }
            return error.stage == .context && error.reason.contains("context7.example") && error.reason.contains("20.0 MiB")
                && error.reason.contains("not saved")
        }
        let failed = try #require(try await store.workflow(lead.id))
        #expect(failed.status == .failed && failed.error?["stage"] == "context" && failed.steps.isEmpty)
        #expect(try failed.json.serializedCount() < 64 << 10, "nothing of the answer was kept")

        let result = try await flow.run(lead, deadline: Fixtures.soon, logger: Fixtures.logger)
        #expect(result["status"] == "qualified" && result["stages"]?["context"]?["content"] == "Serverless GPUs scale to zero.")
        let stored = try #require(try await store.workflow(lead.id))
        #expect(stored.status == .qualified && stored.steps.count == 5)
        #expect(try stored.json.serializedCount() < 64 << 10)
        #expect(context7.calls.count == 2, "the oversized answer was neither retried nor reused from the cache")
    }

    @Test("A saved stage over the limit (kept before it existed) is run again and replaced")
    func oversizedSavedStage() async throws {
        let store = InMemoryWorkflowStore()
        let lead = Fixtures.lead(Fixtures.strongLead)
        let version = Orchestrator.codeVersion
        guard case .claimed = try await store.claim(lead.id, input: lead.data, owner: "worker-old", lease: .seconds(30), version: version) else {
            Issue.record("the first claim failed")
            return
        }
        let bloated: JSONValue = ["content": .string(String(repeating: "y", count: 2 << 20)), "found": true]
        try await store.record(
            lead.id, step: WorkflowStep(stage: .context, output: bloated, codeVersion: version, durationMs: 1), owner: "worker-old", lease: .seconds(30))
        try await store.release(lead.id, owner: "worker-old")
        #expect(LeadStage.context.damage(in: bloated)?.contains("over the") == true)

        let context7 = StubEndpoint("context7", Fixtures.context7Answer)
        let result = try await workflow(store, context7: context7, memory: StubEndpoint("memory", Fixtures.memoryAnswer))
            .run(lead, deadline: Fixtures.soon, logger: Fixtures.logger)
        #expect(result["status"] == "qualified" && result["rerun_damaged"] == ["context"])
        let stored = try #require(try await store.workflow(lead.id))
        #expect(try stored.json.serializedCount() < 64 << 10 && context7.calls.count == 1)
    }

    @Test("NFC and NFD spellings of a lead id are one lead: one workflow, one memory key, get_lead finds it either way")
    func normalizedIDs() async throws {
        let composed = "caf\u{E9}-42"  // é as one code point (NFC)
        let decomposed = "cafe\u{301}-42"  // e and a combining acute accent (NFD)
        #expect(Array(composed.utf8) != Array(decomposed.utf8))
        let parsed = try Lead.parse(["id": .string(decomposed)])
        #expect(Array(parsed.id.utf8) == Array(composed.utf8))
        guard case .getLead(let asked) = try OrchestratorRequest.parse(["action": "get_lead", "lead_id": .string(" \(decomposed) ")]) else {
            Issue.record("get_lead must parse")
            return
        }
        #expect(Array(asked.utf8) == Array(composed.utf8))

        let memory = StubEndpoint("memory", Fixtures.memoryAnswer)
        let store = InMemoryWorkflowStore()
        let flow = workflow(store, memory: memory)
        let first = try await flow.run(Fixtures.lead(Fixtures.strongLead.replacing("id", .string(decomposed))), deadline: Fixtures.soon, logger: Fixtures.logger)
        let second = try await flow.run(Fixtures.lead(Fixtures.strongLead.replacing("id", .string(composed))), deadline: Fixtures.soon, logger: Fixtures.logger)
        #expect(first["status"] == "qualified" && second["reused"] == true)
        #expect(memory.calls.count == 1)
        let key = try #require(memory.calls.first?["key"]?.stringValue)
        #expect(Array(key.utf8) == Array("lead:\(composed)".utf8), "the memory key is the NFC spelling")
    }
}

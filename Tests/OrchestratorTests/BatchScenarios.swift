@testable import Orchestrator
import Testing
import WorkerJSON

/// The batch rules, run against any store (in memory in the default pass, PostgreSQL in the
/// servers pass): a batch accepted is a batch finished.
extension WorkflowScenarios {
    /// A batch is recorded with every lead pending before any starts, and held by its worker;
    /// once that worker is gone its leads are recovered, each run once, and the report is
    /// rebuilt from them. Recording the batch again changes nothing; a failed lead is queued
    /// again; a stopped batch's leads are handed back at once.
    func queuesBatchesDurably() async throws {
        let version = Orchestrator.codeVersion
        let strong = Fixtures.lead(Fixtures.strongLead.replacing("id", "q-strong"))
        let other = Fixtures.lead(Fixtures.strongLead.replacing("id", "q-other"))
        let batch = BatchRecord(
            batchID: "job-1", entries: [.lead("q-strong"), .invalid("input.leads[1].id is missing"), .lead("q-other"), .lead("q-strong")])
        #expect(batch.leadIDs == ["q-strong", "q-other"])
        try await store.enqueue(batch, leads: [strong, other], owner: "doomed", lease: .seconds(30), version: version)

        // Recorded before anything ran: pending, not started, held by the batch's worker.
        for id in ["q-strong", "q-other"] {
            let record = try #require(try await store.workflow(id))
            #expect(record.status == .pending && record.attempts == 0 && record.owner == "doomed" && record.steps.isEmpty, "\(id)")
            #expect(record.input["id"] == .string(id))
        }
        let accepted = try #require(try await store.batch("job-1"))
        #expect(accepted.entries == batch.entries)
        let shown = accepted.json
        #expect(shown["total"] == 4 && shown["pending"] == 3 && shown["invalid"] == 1 && shown["finished"] == false, "\(shown)")
        #expect(shown["leads"]?[1] == ["status": "invalid", "error": "input.leads[1].id is missing"])
        #expect(try await store.batch("no-such-batch") == nil)
        // A live batch's waiting leads are not anybody's to take.
        #expect(try await store.claimAbandoned(owner: "thief", lease: .seconds(30), version: version, limit: 10).isEmpty)

        // Its worker dies: the leases it kept renewing run out (renewed once more, briefly).
        try await store.renewAll(["q-strong", "q-other"], owner: "doomed", lease: .milliseconds(1))
        try await Task.sleep(for: .milliseconds(30))
        let llm = Self.model()
        let recovery = WorkflowRecovery(
            workflow: workflow(owner: "survivor", llm: llm, memory: StubEndpoint("memory", Fixtures.memoryAnswer)), inFlight: InFlightLeads(),
            logger: Fixtures.logger)
        #expect(await recovery.recoverOnce().sorted() == ["q-other", "q-strong"])
        var report = try await store.batch("job-1")?.json
        for _ in 0..<250 where report?["finished"] != true {
            try await Task.sleep(for: .milliseconds(20))
            report = try await store.batch("job-1")?.json
        }
        let rebuilt = try #require(report)
        #expect(rebuilt["finished"] == true && rebuilt["pending"] == 0 && rebuilt["qualified"] == 3 && rebuilt["failed"] == 0, "\(rebuilt)")
        #expect(rebuilt["leads"]?[0]?["lead_id"] == "q-strong" && rebuilt["leads"]?[0]?["score"] == 0.9 && rebuilt["leads"]?[0]?["attempts"] == 1)
        #expect(rebuilt["leads"]?[3] == rebuilt["leads"]?[0] && rebuilt["leads"]?[2]?["lead_id"] == "q-other")
        #expect(llm.asked("lead_qualification").count == 2 && llm.asked("growth_strategy").count == 2, "each lead ran once")

        // The same batch recorded again (a job delivered twice) changes nothing.
        try await store.enqueue(batch, leads: [strong, other], owner: "again", lease: .seconds(30), version: version)
        let kept = try #require(try await store.workflow("q-strong"))
        #expect(kept.status == .qualified && kept.owner == nil && kept.attempts == 1)
        #expect(try await store.batch("job-1")?.createdAt == accepted.createdAt)

        // A failed lead in a new batch is queued again, with its saved stages.
        let failing = Fixtures.lead(Fixtures.strongLead.replacing("id", "q-failed"))
        guard case .claimed = try await store.claim("q-failed", input: failing.data, owner: "w", lease: .seconds(30), version: version) else {
            Issue.record("claim q-failed")
            return
        }
        try await store.record(
            "q-failed", step: WorkflowStep(stage: .context, output: ["skipped": "x"], codeVersion: version, durationMs: 1), owner: "w",
            lease: .seconds(30))
        try await store.finish("q-failed", status: .failed, output: nil, error: ["stage": "memory", "reason": "down"], owner: "w", step: nil)
        try await store.enqueue(
            BatchRecord(batchID: "job-2", entries: [.lead("q-failed")]), leads: [failing], owner: "batcher", lease: .seconds(30), version: version)
        let requeued = try #require(try await store.workflow("q-failed"))
        #expect(requeued.status == .pending && requeued.owner == "batcher" && requeued.error == nil && requeued.attempts == 1)
        // The batch's worker takes up its own queued lead; the saved stage is not run again.
        let result = try await workflow(owner: "batcher", llm: llm, memory: StubEndpoint("memory", Fixtures.memoryAnswer))
            .run(failing, deadline: Fixtures.soon, logger: Fixtures.logger)
        #expect(result["status"] == "qualified" && result["attempts"] == 2 && result["resumed_after"] == ["context"])

        // A stopped batch hands its waiting leads back: recovery takes them at once.
        let waiting = Fixtures.lead(Fixtures.strongLead.replacing("id", "q-waiting"))
        try await store.enqueue(
            BatchRecord(batchID: "job-3", entries: [.lead("q-waiting")]), leads: [waiting], owner: "stopping", lease: .seconds(30),
            version: version)
        try await store.releaseAll(["q-waiting", "q-strong"], owner: "stopping")
        let released = try #require(try await store.workflow("q-waiting"))
        #expect(released.status == .pending && released.owner == nil)
        let taken = try await store.claimAbandoned(owner: "thief", lease: .seconds(30), version: version, limit: 10)
        #expect(taken.map(\.leadID) == ["q-waiting"] && taken.first?.attempts == 1)
    }
}

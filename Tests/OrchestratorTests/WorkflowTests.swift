@testable import Orchestrator
import Testing
import TestSupport
import WorkerJSON

@Suite("Durable lead workflows in memory", .defaultPass)
struct InMemoryWorkflowTests {
    private func scenarios() -> WorkflowScenarios { WorkflowScenarios(store: InMemoryWorkflowStore()) }

    @Test("Every stage saved; the same id again returns the stored outcome without calling anything")
    func qualifies() async throws { try await scenarios().qualifiesOnceAndReuses() }

    @Test("Below the threshold: rejected with reasons, nothing enriched or stored")
    func rejects() async throws { try await scenarios().rejectsBelowThreshold() }

    @Test("A failing stage fails the lead with stage and reason; the retry resumes and repeats nothing")
    func resumes() async throws { try await scenarios().resumesWithoutRepeating() }

    @Test("A damaged saved stage runs again and replaces its row; sound ones are kept")
    func damaged() async throws { try await scenarios().rerunsDamagedStages() }

    @Test("A renewal landing after the run saved its outcome does not pass for a lost lease")
    func finishesAheadOfItsHeartbeat() async throws { try await scenarios().finishesAheadOfItsHeartbeat() }

    @Test("Downstream failures are retried with backoff, never past the deadline")
    func retries() async throws { try await scenarios().retriesWithinTheDeadline() }

    @Test("Leases: busy for others while live, taken over after, the old owner fenced off")
    func leases() async throws { try await scenarios().leasesFence() }

    @Test("Workflows of dead workers are recovered once, from their last stage; too many recoveries fail them")
    func recovery() async throws { try await scenarios().recoversAbandoned() }
}

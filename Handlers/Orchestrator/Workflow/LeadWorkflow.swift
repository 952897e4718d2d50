import Logging
import Synchronization
import WorkerJSON

/// One lead's durable workflow: claimed by its id, its finished stages read back, the others run
/// in order (enrichment beside the memory store), each output saved as it completes, and the
/// outcome saved last. A retried job or another worker resumes after the last saved stage and
/// never runs a saved one again. The lease is renewed while it runs; losing it stops the run
/// without a write.
struct LeadWorkflow: Sendable {
    let pipeline: LeadPipeline
    let store: any WorkflowStore
    /// This worker process (`RUNPOD_POD_ID` plus a random part: a restarted worker is a new owner).
    let owner: String
    var configuration: OrchestratorConfiguration { pipeline.configuration }
    /// How often a busy lead (held by another live worker) is looked at again.
    static let busyPoll: Duration = .milliseconds(250)

    /// Runs `lead`'s workflow or returns its stored outcome.
    func run(_ lead: Lead, deadline: ContinuousClock.Instant, logger: Logger) async throws -> JSONValue {
        let started = ContinuousClock.now
        while true {
            let claim = try await store.claim(
                lead.id, input: lead.data, owner: owner, lease: configuration.lease, version: configuration.codeVersion)
            switch claim {
            case .finished(let record):
                var stages: [LeadStage: JSONValue] = [:]
                for step in record.steps { stages[step.stage] = step.output }
                return Self.report(record.output ?? [:], stages: stages, record: record, resumed: [], reused: true, started: started)
            case .busy(let other):
                guard ContinuousClock.now + Self.busyPoll < deadline else { throw OrchestratorError.busy(lead.id, owner: other) }
                try await Task.sleep(for: Self.busyPoll)
            case .claimed(let record):
                return try await resume(record, deadline: deadline, logger: logger, started: started)
            }
        }
    }

    /// Carries on a workflow this worker owns (claimed by a job, or recovered).
    func resume(_ record: WorkflowRecord, deadline: ContinuousClock.Instant, logger: Logger, started: ContinuousClock.Instant = .now) async throws -> JSONValue {
        var leadLogger = logger
        leadLogger[metadataKey: "lead-id"] = .string(record.leadID)
        let logger = leadLogger
        let lead: Lead
        do {
            lead = try Lead.parse(record.input, at: "the stored lead_data")
        } catch {
            try await store.finish(
                record.leadID, status: .failed, output: nil, error: ["stage": "input", "reason": .string(error.description)], owner: owner, step: nil)
            throw error
        }
        let leadID = record.leadID
        let ending = Ending()
        do {
            return try await withThrowingTaskGroup(of: JSONValue.self) { group in
                group.addTask { try await self.heartbeat(leadID, ending: ending) }
                group.addTask {
                    try await self.stages(lead, record: record, deadline: deadline, logger: logger, started: started, ending: ending)
                }
                defer { group.cancelAll() }
                return try await group.next()!
            }
        } catch is CancellationError {
            // Stopped (worker shutdown, job cancelled): hand it over at once instead of after the lease.
            try? await store.release(leadID, owner: owner)
            throw CancellationError()
        } catch let error as OrchestratorError {
            // A failed stage is saved as the lead's outcome; a lost lease belongs to another worker.
            throw error
        } catch {
            // The store refused a write (a full disk, a database gone for longer than the outage
            // budget): the saved stages stay, and the lead is handed back at once so that a retry,
            // here or on another worker, need not wait for the lease to run out.
            logger.error("Lead \(leadID): its progress could not be saved: \(error)")
            try? await store.release(leadID, owner: owner)
            throw error
        }
    }

    private func stages(
        _ lead: Lead, record: WorkflowRecord, deadline: ContinuousClock.Instant, logger: Logger, started: ContinuousClock.Instant,
        ending: Ending
    ) async throws -> JSONValue {
        var saved: [LeadStage: JSONValue] = [:]
        var damaged: [LeadStage] = []
        for step in record.steps {
            if let damage = step.stage.damage(in: step.output) {
                // Run again; its new output replaces the row.
                logger.warning("Lead \(lead.id): the saved \(step.stage.rawValue) output is damaged (\(damage)); running the stage again")
                damaged.append(step.stage)
            } else {
                saved[step.stage] = step.output
            }
        }
        let resumed = LeadStage.allCases.filter { saved[$0] != nil }
        if !resumed.isEmpty { logger.info("Resuming lead \(lead.id) after \(resumed.map(\.rawValue).joined(separator: ", "))") }
        let done = saved
        do {
            let context = try await step(.context, lead, done) { try await pipeline.context(lead, deadline: deadline, logger: logger) }
            // Saved with the outcome when it rejects the lead: one write instead of two.
            let (qualification, qualified) = try await compute(.qualification, lead, done) {
                try await pipeline.qualify(lead, context: context, deadline: deadline, logger: logger)
            }
            let score = qualification["score"]?.doubleValue ?? 0
            if score < configuration.threshold {
                let output = outcome(lead, .rejected, qualification: qualification)
                try await finish(lead.id, .rejected, output: output, error: nil, step: qualified, ending: ending)
                return Self.report(
                    output, stages: [.context: context, .qualification: qualification], record: record, resumed: resumed, reused: false,
                    damaged: damaged, started: started)
            }
            if let qualified { try await store.record(lead.id, step: qualified, owner: owner, lease: configuration.lease) }
            async let enrichment = step(.enrichment, lead, done) {
                try await pipeline.enrich(lead, qualification: qualification, deadline: deadline, logger: logger)
            }
            async let memory = step(.memory, lead, done) {
                try await pipeline.store(lead, qualification: qualification, deadline: deadline, logger: logger)
            }
            let (enriched, stored) = try await (enrichment, memory)
            // The last stage is saved with the outcome.
            let (strategy, planned) = try await compute(.strategy, lead, done) {
                try await pipeline.strategy(lead, qualification: qualification, enrichment: enriched, deadline: deadline, logger: logger)
            }
            let output = outcome(lead, .qualified, qualification: qualification)
            try await finish(lead.id, .qualified, output: output, error: nil, step: planned, ending: ending)
            let stages: [LeadStage: JSONValue] = [
                .context: context, .qualification: qualification, .enrichment: enriched, .memory: stored, .strategy: strategy,
            ]
            return Self.report(output, stages: stages, record: record, resumed: resumed, reused: false, damaged: damaged, started: started)
        } catch let error as OrchestratorError where error.isStageFailure {
            let stage = error.stage?.rawValue ?? "unknown"
            logger.error("Lead \(lead.id) failed at the \(stage) stage: \(error.reason)")
            try await finish(lead.id, .failed, output: nil, error: ["stage": .string(stage), "reason": .string(error.reason)], step: nil, ending: ending)
            throw error
        }
    }

    /// Saves the outcome. The heartbeat is told first: the saved outcome ends the lease, and a
    /// renewal landing right after it must not pass for a lease lost to another worker.
    private func finish(
        _ leadID: String, _ status: WorkflowStatus, output: JSONValue?, error: JSONValue?, step: WorkflowStep?, ending: Ending
    ) async throws {
        ending.mark()
        try await store.finish(leadID, status: status, output: output, error: error, owner: owner, step: step)
    }

    /// A stage's saved output, or its output now, saved before it is used.
    private func step(
        _ stage: LeadStage, _ lead: Lead, _ done: [LeadStage: JSONValue], _ body: () async throws -> JSONValue
    ) async throws -> JSONValue {
        let (output, fresh) = try await compute(stage, lead, done, body)
        if let fresh { try await store.record(lead.id, step: fresh, owner: owner, lease: configuration.lease) }
        return output
    }

    /// A stage's saved output, or its output now with the step to save (nil when it was saved).
    private func compute(
        _ stage: LeadStage, _ lead: Lead, _ done: [LeadStage: JSONValue], _ body: () async throws -> JSONValue
    ) async throws -> (JSONValue, WorkflowStep?) {
        if let output = done[stage] { return (output, nil) }
        let started = ContinuousClock.now
        let output = try await body()
        let elapsed = ContinuousClock.now - started
        // In milliseconds, to the microsecond.
        let milliseconds = (elapsed.fractionalMilliseconds * 1000).rounded() / 1000
        return (output, WorkflowStep(stage: stage, output: output, codeVersion: configuration.codeVersion, durationMs: milliseconds))
    }

    /// Renews the lease a third of the way through it, until cancelled; throws once it was lost.
    /// Once the run saves its outcome it only waits to be cancelled: the stages return the result.
    private func heartbeat(_ leadID: String, ending: Ending) async throws -> JSONValue {
        while true {
            try await Task.sleep(for: configuration.lease / 3)
            if ending.isMarked { break }
            do {
                guard try await store.renew(leadID, owner: owner, lease: configuration.lease) else {
                    if ending.isMarked { break }
                    throw OrchestratorError.leaseLost(leadID)
                }
            } catch let error as OrchestratorError {
                throw error
            } catch is CancellationError {
                throw CancellationError()
            } catch {
                // A store outage: the next beat tries again; the stages' own writes wait it out.
                continue
            }
        }
        // The outcome is being saved: the group takes the stages' result and then cancels this.
        while true { try await Task.sleep(for: .seconds(3600)) }
    }

    /// The outcome as stored: the stages' outputs are in their own rows, not repeated here.
    private func outcome(_ lead: Lead, _ status: WorkflowStatus, qualification: JSONValue) -> JSONValue {
        [
            "lead_id": .string(lead.id), "status": .string(status.rawValue), "score": qualification["score"] ?? .null,
            "reasons": qualification["reasons"] ?? [], "threshold": .number(configuration.threshold),
            "code_version": .string(configuration.codeVersion),
        ]
    }

    /// The outcome with every stage's output, plus how this run went.
    static func report(
        _ output: JSONValue, stages: [LeadStage: JSONValue], record: WorkflowRecord, resumed: [LeadStage], reused: Bool,
        damaged: [LeadStage] = [], started: ContinuousClock.Instant
    ) -> JSONValue {
        guard case .object(var fields) = output else { return output }
        var byName: [String: JSONValue] = [:]
        for (stage, stageOutput) in stages { byName[stage.rawValue] = stageOutput }
        fields["stages"] = .object(byName)
        let elapsed = ContinuousClock.now - started
        fields["duration_ms"] = .number(elapsed.fractionalMilliseconds)
        fields["attempts"] = .integer(Int64(record.attempts))
        if reused { fields["reused"] = true }
        if !resumed.isEmpty { fields["resumed_after"] = .array(resumed.map { .string($0.rawValue) }) }
        if !damaged.isEmpty { fields["rerun_damaged"] = .array(damaged.map { .string($0.rawValue) }) }
        return .object(fields)
    }
}

extension Duration {
    /// Milliseconds with their fraction: the `duration_ms` of reports and saved steps.
    var fractionalMilliseconds: Double {
        Double(components.seconds) * 1000 + Double(components.attoseconds) / 1e15
    }
}

/// Set once a run starts saving its outcome (which ends the lease), for its heartbeat.
final class Ending: Sendable {
    private let marked = Atomic<Bool>(false)

    func mark() { marked.store(true, ordering: .releasing) }
    var isMarked: Bool { marked.load(ordering: .acquiring) }
}

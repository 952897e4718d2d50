import WorkerJSON

/// Where lead workflows and their stage checkpoints are kept: PostgreSQL, or memory without
/// `DATABASE_URL`. Every write that carries on a workflow is fenced by its owner: a worker whose
/// lease ran out (and whose workflow another took over) can no longer write to it.
protocol WorkflowStore: Sendable {
    /// "PostgreSQL host:port/db" or "memory", for logs.
    var description: String { get }
    /// Creates the tables (migrations) and checks the store answers.
    func prepare() async throws
    /// Starts the workflow `leadID`, or takes it up again: a new one, a failed one (retried from
    /// its last finished stage), or a pending one whose lease ran out or that `owner` holds.
    func claim(_ leadID: String, input: JSONValue, owner: String, lease: Duration, version: String) async throws -> WorkflowClaim
    /// Saves a finished stage's output and renews the lease; throws `leaseLost` unless `owner`
    /// still owns the workflow. Saving a stage already saved keeps the first output.
    func record(_ leadID: String, step: WorkflowStep, owner: String, lease: Duration) async throws
    /// Extends the lease; false when `owner` no longer owns the workflow.
    func renew(_ leadID: String, owner: String, lease: Duration) async throws -> Bool
    /// Ends the workflow with its outcome, saving `step` (its last stage) in the same write;
    /// throws `leaseLost` unless `owner` still owns it.
    func finish(_ leadID: String, status: WorkflowStatus, output: JSONValue?, error: JSONValue?, owner: String, step: WorkflowStep?) async throws
    /// Gives the workflow up (the worker stops): another worker may take it at once.
    func release(_ leadID: String, owner: String) async throws
    /// Takes over up to `limit` pending workflows of `version` whose lease ran out (their worker
    /// died), oldest first; none is handed to two workers.
    func claimAbandoned(owner: String, lease: Duration, version: String, limit: Int) async throws -> [WorkflowRecord]
    /// Pending workflows started under other code versions (recovery leaves them alone).
    func pendingOfOtherVersions(than version: String) async throws -> Int
    /// The workflow and its steps, for `get_lead`.
    func workflow(_ leadID: String) async throws -> WorkflowRecord?

    /// Records an accepted batch and every one of its leads as pending, in one write, before any
    /// of them starts: new leads are added not yet started (attempts 0), failed ones are queued
    /// again, leads already pending or ended are left as they are. Queued leads are leased to
    /// `owner`, the batch's worker, which holds them (`renewAll`) while it runs; if it dies,
    /// recovery takes them over after the lease like any other pending workflow. `leads` are
    /// distinct. Recording the same batch again (a job delivered twice) adds nothing.
    func enqueue(_ batch: BatchRecord, leads: [Lead], owner: String, lease: Duration, version: String) async throws
    /// Extends the leases `owner` holds on those of these workflows still pending.
    func renewAll(_ leadIDs: [String], owner: String, lease: Duration) async throws
    /// Gives those of these pending workflows that `owner` holds back at once (a stopped batch's
    /// leads not yet started): recovery takes them without waiting for the lease.
    func releaseAll(_ leadIDs: [String], owner: String) async throws
    /// The batch with its leads' workflows as they are now, for `get_batch`; nil for an unknown id.
    func batch(_ batchID: String) async throws -> BatchRecord?
}

enum WorkflowStatus: String, Sendable, CaseIterable {
    case pending
    case qualified
    case rejected
    case failed

    var isFinal: Bool { self != .pending }
}

struct WorkflowStep: Sendable, Equatable {
    var stage: LeadStage
    var output: JSONValue
    var codeVersion: String
    var durationMs: Double
    /// Unix time in milliseconds (set by the store).
    var completedAt: Int64 = 0
}

struct WorkflowRecord: Sendable, Equatable {
    var leadID: String
    var status: WorkflowStatus
    var input: JSONValue
    var output: JSONValue?
    var error: JSONValue?
    var codeVersion: String
    var owner: String?
    /// Times the workflow was started or taken up again.
    var attempts: Int
    var steps: [WorkflowStep] = []
    var createdAt: Int64 = 0
    var updatedAt: Int64 = 0

    func step(_ stage: LeadStage) -> WorkflowStep? { steps.first { $0.stage == stage } }

    /// As `get_lead` answers.
    var json: JSONValue {
        var fields: [String: JSONValue] = [
            "found": true, "lead_id": .string(leadID), "status": .string(status.rawValue), "input": input,
            "code_version": .string(codeVersion), "attempts": .integer(Int64(attempts)),
            "created_at_ms": .integer(createdAt), "updated_at_ms": .integer(updatedAt),
            "steps": .array(LeadStage.allCases.compactMap { stage in
                step(stage).map {
                    [
                        "stage": .string(stage.rawValue), "output": $0.output, "code_version": .string($0.codeVersion),
                        "duration_ms": .number($0.durationMs), "completed_at_ms": .integer($0.completedAt),
                    ]
                }
            }),
        ]
        if let output { fields["output"] = output }
        if let error { fields["error"] = error }
        if let owner { fields["owner"] = .string(owner) }
        if let score = output?["score"] ?? step(.qualification)?.output["score"] { fields["score"] = score }
        return .object(fields)
    }
}

enum WorkflowClaim: Sendable {
    /// This worker owns it now; `record.steps` are the finished stages.
    case claimed(WorkflowRecord)
    /// It already ended (qualified or rejected): the stored outcome is the answer.
    case finished(WorkflowRecord)
    /// Another worker holds a live lease on it.
    case busy(owner: String)
}

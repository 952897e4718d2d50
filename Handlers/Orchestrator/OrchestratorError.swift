/// An orchestrator job or stage that could not be done: says what is wrong and what to do.
struct OrchestratorError: Error, CustomStringConvertible, Equatable {
    private enum Code: Equatable {
        case input
        case stage
        case leaseLost
        case busy
        case startup
    }

    private let code: Code
    /// The stage that failed, for stage failures.
    let stage: LeadStage?
    let reason: String

    var description: String { stage.map { "\($0.rawValue) stage: \(reason)" } ?? reason }

    /// A malformed job: nothing was run or written.
    static func input(_ message: String) -> Self { Self(code: .input, stage: nil, reason: message) }
    /// A stage that failed for good (after its retries).
    static func stage(_ stage: LeadStage, _ message: String) -> Self { Self(code: .stage, stage: stage, reason: message) }
    /// Another worker took the workflow over (this one was presumed dead): stop without writing.
    static func leaseLost(_ leadID: String) -> Self {
        Self(code: .leaseLost, stage: nil,
             reason: "lead \(leadID) was taken over by another worker after this one's lease ran out; it carries on there")
    }
    /// Another live worker runs the lead and did not finish before this job's deadline.
    static func busy(_ leadID: String, owner: String) -> Self {
        Self(code: .busy, stage: nil,
             reason: "lead \(leadID) is being processed by worker \(owner) and did not finish within this job's deadline; ask get_lead later")
    }

    /// The worker could not start: its database could not be reached within the start-up budget,
    /// or start-up was stopped (the worker is shutting down).
    static func startup(_ message: String) -> Self { Self(code: .startup, stage: nil, reason: message) }

    var isInputError: Bool { code == .input }
    var isLeaseLost: Bool { code == .leaseLost }
    var isStageFailure: Bool { code == .stage }
}

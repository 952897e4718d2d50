import WorkerJSON

/// The stages of a lead's workflow, in order; each one's output is a checkpoint.
enum LeadStage: String, CaseIterable, Sendable {
    case context
    case qualification
    case enrichment
    case memory
    case strategy
}

extension LeadStage {
    /// The most a stage saves: its output as JSON, at most 1 MiB. A saved step is read back by
    /// every later run of the lead, `get_lead` and a reused answer, so a downstream answer larger
    /// than this fails its stage (naming the endpoint and the size) instead of being saved.
    static let maxSavedBytes = 1 << 20

    /// What is wrong with a saved output of this stage, or nil when it can be used. Later stages
    /// read the qualification's score and reasons, so a row damaged by hand or by a bug must not
    /// pass for a score of 0 (a silent rejection): the workflow runs such a stage again. An output
    /// over `maxSavedBytes` (saved before the limit existed) is run again too.
    func damage(in output: JSONValue) -> String? {
        guard case .object(let fields) = output else { return "not a JSON object" }
        let size = (try? output.serializedCount()) ?? Int.max
        guard size <= Self.maxSavedBytes else { return "\(size) bytes of JSON, over the \(Self.maxSavedBytes) a stage saves" }
        guard self == .qualification else { return nil }
        guard let score = fields["score"]?.doubleValue, (0...1).contains(score) else {
            let found = fields["score"].map { (try? $0.jsonString()) ?? "unreadable" } ?? "missing"
            return "score is \(found), not a number from 0 to 1"
        }
        guard let reasons = fields["reasons"]?.arrayValue, reasons.allSatisfy({ $0.stringValue != nil }) else {
            return "reasons is not a list of strings"
        }
        return nil
    }
}

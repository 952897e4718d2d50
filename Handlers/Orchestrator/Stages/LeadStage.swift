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
    /// What is wrong with a saved output of this stage, or nil when it can be used. Later stages
    /// read the qualification's score and reasons, so a row damaged by hand or by a bug must not
    /// pass for a score of 0 (a silent rejection): the workflow runs such a stage again.
    func damage(in output: JSONValue) -> String? {
        guard case .object(let fields) = output else { return "not a JSON object" }
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

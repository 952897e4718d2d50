/// The stages of a lead's workflow, in order; each one's output is a checkpoint.
enum LeadStage: String, CaseIterable, Sendable {
    case context
    case qualification
    case enrichment
    case memory
    case strategy
}

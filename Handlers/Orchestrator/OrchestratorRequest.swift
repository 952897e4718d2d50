import CurlHTTP
import WorkerJSON

/// A validated orchestrator job.
enum OrchestratorRequest: Equatable {
    /// `process_lead` `{lead_data}`.
    case processLead(Lead)
    /// `batch_process` `{leads, concurrency?}`: each lead parsed on its own, so one malformed
    /// lead is reported without holding up the others.
    case batchProcess([Result<Lead, OrchestratorError>], concurrency: Int?)
    /// `get_lead` `{lead_id}`.
    case getLead(String)
    /// `get_batch` `{batch_id}`: a batch's report rebuilt from its leads (the id is the job's).
    case getBatch(String)

    static let actions = ["process_lead", "batch_process", "get_lead", "get_batch"]
    static let maxBatch = 10_000
    static let maxConcurrency = 64

    static func parse(_ input: JSONValue) throws(OrchestratorError) -> OrchestratorRequest {
        guard case .object(let fields) = input else {
            throw .input("input must be an object with an \"action\", got \(input.typeName)")
        }
        guard let action = fields["action"]?.stringValue else {
            throw .input("input.action is missing; use one of \(actions.joined(separator: ", "))")
        }
        switch action {
        case "process_lead":
            try refuseNUL(fields["lead_data"], at: "input.lead_data")
            return .processLead(try Lead.parse(fields["lead_data"]))
        case "batch_process":
            guard let leads = fields["leads"]?.arrayValue else {
                throw .input("input.leads must be a list of lead objects, got \(fields["leads"]?.typeName ?? "nothing")")
            }
            guard !leads.isEmpty, leads.count <= maxBatch else {
                throw .input("input.leads must hold 1 to \(maxBatch) leads, got \(leads.count)")
            }
            var concurrency: Int?
            if let raw = fields["concurrency"], raw != .null {
                guard let number = raw.intValue, (1...maxConcurrency).contains(number) else {
                    throw .input("input.concurrency must be a whole number from 1 to \(maxConcurrency), got \(raw)")
                }
                concurrency = number
            }
            let parsed = leads.enumerated().map { index, value -> Result<Lead, OrchestratorError> in
                do throws(OrchestratorError) {
                    try refuseNUL(value, at: "input.leads[\(index)]")
                    return .success(try Lead.parse(value, at: "input.leads[\(index)]"))
                } catch {
                    return .failure(error)
                }
            }
            return .batchProcess(parsed, concurrency: concurrency)
        case "get_lead":
            try refuseNUL(fields["lead_id"], at: "input.lead_id")
            let id: String
            switch fields["lead_id"] {
            case .string(let text)?: id = Lead.normalizedID(text)
            case let number? where number.intValue != nil: id = String(number.intValue!)
            default: throw .input("input.lead_id must be the lead's id (a string or a whole number)")
            }
            guard !id.isEmpty, id.utf8.count <= Lead.maxIDLength else { throw .input("input.lead_id must be 1 to \(Lead.maxIDLength) bytes") }
            return .getLead(id)
        case "get_batch":
            return .getBatch(try batchID(fields["batch_id"]))
        default:
            throw .input("unknown action '\(action)'; use one of \(actions.joined(separator: ", "))")
        }
    }
}

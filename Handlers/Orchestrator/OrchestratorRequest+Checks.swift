import CurlHTTP
import WorkerJSON

extension OrchestratorRequest {
    /// The longest batch id taken (the job's id, as the platform or the endpoint server made it).
    static let maxBatchIDLength = 1024

    /// Refuses a value holding a NUL character (U+0000) anywhere, in a string or a key, naming
    /// where: PostgreSQL keeps neither text nor JSON with one (jsonb refuses `\u0000`, and text
    /// sent through libpq would end at it), so a lead carrying one could be neither stored nor
    /// looked up as given. Refused in memory too, so both stores take the same jobs.
    static func refuseNUL(_ value: JSONValue?, at path: String) throws(OrchestratorError) {
        guard let value, value.containsNUL, let found = value.nulPath(below: path) else { return }
        throw .input("\(found) contains a NUL character (\\u0000), which cannot be stored; remove it")
    }

    /// `get_batch`'s `batch_id`: the id of the `batch_process` job.
    static func batchID(_ value: JSONValue?) throws(OrchestratorError) -> String {
        try refuseNUL(value, at: "input.batch_id")
        guard let text = value?.stringValue?.trimmingSpaces(), !text.isEmpty, text.utf8.count <= maxBatchIDLength else {
            throw .input("input.batch_id must be the id of the batch_process job (a string of 1 to \(maxBatchIDLength) bytes)")
        }
        return text
    }
}

extension JSONValue {
    /// Whether a string or a key anywhere in the value holds a NUL character.
    var containsNUL: Bool {
        switch self {
        case .string(let text): return text.utf8.contains(0)
        case .array(let items): return items.contains { $0.containsNUL }
        case .object(let fields): return fields.contains { $0.key.utf8.contains(0) || $0.value.containsNUL }
        case .null, .bool, .integer, .number: return false
        }
    }

    /// Where the first NUL character is, as a path below `path` (`input.lead_data.notes[2]`, or
    /// `a key of input.lead_data`); keys are looked at in sorted order, so the answer is stable.
    func nulPath(below path: String) -> String? {
        switch self {
        case .string(let text):
            return text.utf8.contains(0) ? path : nil
        case .array(let items):
            for (index, item) in items.enumerated() where item.containsNUL { return item.nulPath(below: "\(path)[\(index)]") }
            return nil
        case .object(let fields):
            for key in fields.keys.sorted() {
                if key.utf8.contains(0) { return "a key of \(path)" }
                if let value = fields[key], value.containsNUL { return value.nulPath(below: "\(path).\(key)") }
            }
            return nil
        case .null, .bool, .integer, .number:
            return nil
        }
    }
}

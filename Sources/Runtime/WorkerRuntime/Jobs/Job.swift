import WorkerJSON

/// A job as the platform hands it over: `id`, `input`, and whatever else it carries
/// (`webhook`, `batchId`, `policy`, …), all given to the handler unchanged.
public struct Job: Sendable {
    public let id: String
    public let input: JSONValue
    /// The job object's other keys, as sent. Kept apart (not as one object) so that a job made
    /// by the endpoint server, which has none, costs no dictionary.
    private let others: [String: JSONValue]

    /// The whole job object: `id`, `input` and every other key.
    public var raw: JSONValue {
        var object = others
        object["id"] = .string(id)
        object["input"] = input
        return .object(object)
    }

    /// A key of the job object other than `id` and `input`.
    package subscript(key: String) -> JSONValue? { others[key] }

    public var webhook: String? { others["webhook"]?.stringValue }
    public var batchID: String? { others["batchId"]?.stringValue }

    /// Validates a job object from the platform; the error says what is wrong with it.
    package init(json: JSONValue) throws(JobValidationError) {
        guard case .object(let object) = json else {
            throw JobValidationError(jobID: nil, reason: "a job must be a JSON object, got \(json.typeName)")
        }
        guard let idValue = object["id"] else {
            throw JobValidationError(jobID: nil, reason: "the job has no 'id' field")
        }
        guard case .string(let id) = idValue, !id.isEmpty else {
            throw JobValidationError(jobID: nil, reason: "the job's 'id' must be a non-empty string, got \(idValue.typeName)")
        }
        guard let input = object["input"] else {
            throw JobValidationError(jobID: id, reason: "the job has no 'input' field")
        }
        var others = object
        others["id"] = nil
        others["input"] = nil
        self.id = id
        self.input = input
        self.others = others
    }

    /// A job with `extra` as its other keys (`id` and `input` there are ignored).
    public init(id: String, input: JSONValue, extra: [String: JSONValue] = [:]) {
        var others = extra
        if others["id"] != nil || others["input"] != nil {
            others["id"] = nil
            others["input"] = nil
        }
        self.id = id
        self.input = input
        self.others = others
    }
}

/// A job the platform sent that cannot be run. `jobID` is set when the job could still be
/// answered with an error result.
package struct JobValidationError: Error, CustomStringConvertible, Sendable {
    package let jobID: String?
    package let reason: String
    package var description: String { "Job has missing or invalid field(s): \(reason)" }
}

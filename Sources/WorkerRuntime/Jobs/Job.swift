import WorkerJSON

/// A job as the platform hands it over: `id`, `input`, and whatever else it carries
/// (`webhook`, `batchId`, …), kept in `raw` and given to the handler unchanged.
public struct Job: Sendable {
    public let id: String
    public let input: JSONValue
    public let raw: JSONValue

    public var webhook: String? { raw["webhook"]?.stringValue }
    public var batchID: String? { raw["batchId"]?.stringValue }

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
        self.id = id
        self.input = input
        self.raw = json
    }

    public init(id: String, input: JSONValue, extra: [String: JSONValue] = [:]) {
        var object = extra
        object["id"] = .string(id)
        object["input"] = input
        self.id = id
        self.input = input
        self.raw = .object(object)
    }
}

/// A job the platform sent that cannot be run. `jobID` is set when the job could still be
/// answered with an error result.
package struct JobValidationError: Error, CustomStringConvertible, Sendable {
    package let jobID: String?
    package let reason: String
    package var description: String { "Job has missing or invalid field(s): \(reason)" }
}

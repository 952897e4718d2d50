import WorkerJSON

/// What `/status`, `/runsync` and the webhook report about a job: the cloud's envelope
/// `{"id", "status", "delayTime", "executionTime", "output"?, "error"?, "workerId"?}`.
public struct JobStatusReport: Sendable, Equatable {
    public var id: String
    public var status: JobStatus
    /// Milliseconds from submission to the start (or until now while queued).
    public var delayTime: Int64
    /// Milliseconds of execution so far, or in all once final.
    public var executionTime: Int64
    /// The result once final; the last progress update while running.
    public var output: JSONValue?
    public var error: String?
    public var workerID: String?

    public init(
        id: String, status: JobStatus, delayTime: Int64 = 0, executionTime: Int64 = 0, output: JSONValue? = nil,
        error: String? = nil, workerID: String? = nil
    ) {
        self.id = id
        self.status = status
        self.delayTime = delayTime
        self.executionTime = executionTime
        self.output = output
        self.error = error
        self.workerID = workerID
    }

    package var json: JSONValue {
        var body: [String: JSONValue] = [
            "id": .string(id), "status": .string(status.rawValue),
            "delayTime": .integer(delayTime), "executionTime": .integer(executionTime),
        ]
        if let output { body["output"] = output }
        if let error { body["error"] = .string(error) }
        if let workerID { body["workerId"] = .string(workerID) }
        return .object(body)
    }

    /// `json.serialized()`, written directly: every /status and /runsync answer is one of these.
    /// Keys in canonical (byte) order, so the bytes equal the canonical form exactly.
    package func serialized() throws(JSONError) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(256)
        out.append(static: #"{"delayTime":"#)
        JSONValue.serialize(integer: delayTime, into: &out)
        if let error {
            out.append(static: #","error":"#)
            JSONValue.serialize(string: error, into: &out)
        }
        out.append(static: #","executionTime":"#)
        JSONValue.serialize(integer: executionTime, into: &out)
        out.append(static: #","id":"#)
        JSONValue.serialize(string: id, into: &out)
        if let output {
            out.append(static: #","output":"#)
            try output.serialize(into: &out)
        }
        out.append(static: #","status":""#)
        out.append(contentsOf: status.rawValue.utf8)
        out.append(UInt8(ascii: "\""))
        if let workerID {
            out.append(static: #","workerId":"#)
            JSONValue.serialize(string: workerID, into: &out)
        }
        out.append(UInt8(ascii: "}"))
        return out
    }

    /// Reads an envelope; `/run` and an unfinished `/runsync` answer only `id` and `status`.
    package init(json: JSONValue) throws(EndpointAPIError) {
        guard case .object(let fields) = json else {
            throw .invalidAnswer("a job status must be a JSON object, got \(json.typeName)")
        }
        guard let id = fields["id"]?.stringValue, !id.isEmpty else {
            throw .invalidAnswer("the job status has no string \"id\"")
        }
        guard let raw = fields["status"]?.stringValue else { throw .invalidAnswer("the status of job \(id) has no \"status\"") }
        guard let status = JobStatus(rawValue: raw) else {
            throw .invalidAnswer("job \(id) has the unknown status \"\(raw)\"")
        }
        self.init(
            id: id, status: status, delayTime: Int64(fields["delayTime"]?.intValue ?? 0),
            executionTime: Int64(fields["executionTime"]?.intValue ?? 0),
            output: fields["output"].flatMap { $0 == .null ? nil : $0 },
            error: fields["error"].flatMap { $0 == .null ? nil : ($0.stringValue ?? (try? $0.jsonString())) },
            workerID: fields["workerId"]?.stringValue)
    }

    /// What the platform POSTs to a job's webhook: the envelope plus the input and the webhook itself.
    package func webhookPayload(input: JSONValue, webhook: String) -> JSONValue {
        guard case .object(var body) = json else { return json }
        body["input"] = input
        body["webhook"] = .string(webhook)
        return .object(body)
    }
}

/// A handler with typed input and output: the input is decoded from the job's `input`,
/// and a decoding failure becomes an error result that names the field.
public protocol JobHandler: Sendable {
    associatedtype Input: Decodable
    associatedtype Output: Encodable
    func handle(_ input: Input, context: JobContext) async throws -> Output
    func start() async throws
}

extension JobHandler {
    public func start() async throws {}
}

/// A handler over raw JSON: any input value, any output value.
public protocol JSONJobHandler: Sendable {
    func handle(_ input: JSONValue, context: JobContext) async throws -> JSONValue
    func start() async throws
}

extension JSONJobHandler {
    public func start() async throws {}
}

/// A handler that streams: each `yield` is delivered before the call returns.
public protocol StreamingJobHandler: Sendable {
    func handle(_ input: JSONValue, context: JobContext, stream: JobOutputWriter) async throws
    func start() async throws
}

extension StreamingJobHandler {
    public func start() async throws {}
}

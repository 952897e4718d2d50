import WorkerJSON

/// A handler with typed input and output: the input is decoded from the job's `input`,
/// and a decoding failure becomes an error result that names the field.
public protocol JobHandler: Sendable {
    associatedtype Input: Decodable
    associatedtype Output: Encodable
    func handle(_ input: Input, context: JobContext) async throws -> Output
    /// As `RawJobHandler.start()`.
    func start() async throws
    /// As `RawJobHandler.shutdown()`.
    func shutdown() async throws
    /// As `RawJobHandler.isHealthy`.
    var isHealthy: Bool { get }
}

extension JobHandler {
    public func start() async throws {}
    public func shutdown() async throws {}
    public var isHealthy: Bool { true }
}

/// A handler over raw JSON: any input value, any output value.
public protocol JSONJobHandler: Sendable {
    func handle(_ input: JSONValue, context: JobContext) async throws -> JSONValue
    func start() async throws
    func shutdown() async throws
    var isHealthy: Bool { get }
}

extension JSONJobHandler {
    public func start() async throws {}
    public func shutdown() async throws {}
    public var isHealthy: Bool { true }
}

/// A handler that streams: each `yield` is delivered before the call returns.
public protocol StreamingJobHandler: Sendable {
    func handle(_ input: JSONValue, context: JobContext, stream: JobOutputWriter) async throws
    func start() async throws
    func shutdown() async throws
    var isHealthy: Bool { get }
}

extension StreamingJobHandler {
    public func start() async throws {}
    public func shutdown() async throws {}
    public var isHealthy: Bool { true }
}

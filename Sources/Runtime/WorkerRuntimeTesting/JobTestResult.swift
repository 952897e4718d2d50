import WorkerJSON

/// What one job produced, as `WorkerRuntime.test(_:)` observed it on its way to the platform.
public struct JobTestResult: Sendable {
    /// The result's `output`: the returned value, or a stream's aggregate; nil for an error.
    public let output: JSONValue?
    /// The job's error text (a thrown error, a returned `{"error": …}`, an error chunk).
    public let error: String?
    /// Stream chunks, in the order they were yielded.
    public let chunks: [JSONValue]
    /// Progress updates, in order.
    public let progress: [JSONValue]
    public let isStream: Bool
    /// The exact job-done body the worker would post.
    public let body: JSONValue

    public var succeeded: Bool { error == nil }
}

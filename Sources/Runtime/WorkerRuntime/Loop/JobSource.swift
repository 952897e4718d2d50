import WorkerJSON

/// Where results go: the platform's job-done and job-stream (or the terminal, or the local
/// server's job store).
package protocol ResultSink: Sendable {
    /// job-done: a final result, or a progress update (`isStream` false).
    func postResult(_ body: ResultPayload, jobID: String, isStream: Bool) async -> DeliveryOutcome
    /// job-stream: one chunk, `{"output": chunk}`.
    func postChunk(_ body: ResultPayload, jobID: String) async -> DeliveryOutcome
    /// The largest chunk body it takes: the platform's 1 MiB unless the sink says otherwise (an
    /// answer served from this process, as the endpoint server's, is bounded by its response).
    var maxChunkBytes: Int { get }
}

extension ResultSink {
    package var maxChunkBytes: Int { ResultBody.maxChunkBytes }
}

/// A sink in this process that takes every result at once and never refuses one (the endpoint
/// server's job store): final results go to it directly, without the retry loop or a suspension.
package protocol InProcessResultSink: ResultSink {
    /// A final result.
    func record(_ body: ResultPayload, jobID: String, isStream: Bool)
}

/// The platform behind a protocol, so the loop runs against an in-memory source in tests.
package protocol JobSource: ResultSink {
    /// job-take (one job) or job-take-batch (`count` > 1). Returns when the platform answers;
    /// cancelling the calling task aborts the request.
    func takeJobs(count: Int, jobInProgress: Bool) async -> JobTakeOutcome
    /// One long poll of the stop channel; nil when the platform offers none.
    func pollStopRequests() async -> StopPollOutcome?
}

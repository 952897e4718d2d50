import EndpointAPI
import WorkerJSON
import WorkerRuntime

/// Where the endpoint API's jobs live: in this process (`JobStore`, `--local` and load
/// balancing), or in a store other processes share (a fleet's Redis, `WorkerFleet`). The routes,
/// MCP and the OpenAI routes speak only to this, so a backend changes where jobs are kept and who
/// runs them, never the API.
package protocol JobBackend: Sendable {
    /// Queues a job (as /run, or /runsync with `sync`); with its report when it already finished
    /// (a job run on the caller's thread). `requestBytes` is the body's length when known;
    /// `idempotencyKey` (a /run's `Idempotency-Key`) returns the job already made for it.
    func submit(_ request: JobRequest, sync: Bool, requestBytes: Int?, idempotencyKey: String?) async throws(APIError)
        -> (id: String, finished: JobStatusReport?)
    /// Queues a job whose progress, chunks and final report come as events. See
    /// `EndpointRouteContext.submitListening`.
    func submitListening(_ request: JobRequest, sync: Bool, retained: Bool, newestOnly: Bool) async throws(APIError)
        -> (id: String, events: AsyncStream<JobEvent>)
    /// What /status answers; nil for an unknown (or expired) job.
    func report(_ id: String) async throws(APIError) -> JobStatusReport?
    /// What /stream answers: the chunks since the last poll and the status; nil when unknown.
    func poll(_ id: String) async throws(APIError) -> JSONValue?
    /// Waits until the job is final or `timeout` passes; its report then, nil when unknown.
    func waitForFinal(_ id: String, timeout: Duration) async -> JobStatusReport?
    /// A job's events as they come, then its final report; nil for an unknown job.
    func listen(_ id: String) async -> AsyncStream<JobEvent>?
    /// Cancels (or times out) a job; `{id, status}`, nil for an unknown job.
    @discardableResult
    func stop(_ id: String, as status: JobStatus, error: String?) async throws(APIError) -> JSONValue?
    /// /retry: queues a FAILED or TIMED_OUT job again under its id.
    func retry(_ id: String) async throws(APIError) -> JSONValue
    /// /purge-queue: removes every job not yet started.
    func purgeQueue() async throws(APIError) -> JSONValue
    /// /health's `jobs` and `workers`.
    func health() async throws(APIError) -> JSONValue
}

/// The in-process store: its queries, waits, `stop`, `retry` and `purgeQueue` are the protocol's
/// already (synchronous, never failing).
extension JobStore: JobBackend {
    func submit(_ request: JobRequest, sync: Bool, requestBytes: Int?, idempotencyKey: String?) throws(APIError)
        -> (id: String, finished: JobStatusReport?)
    {
        if let idempotencyKey, let known = idempotency.id(for: idempotencyKey, now: now()) { return (known, nil) }
        let (job, finished) = try submit(request, sync: sync, requestBytes: requestBytes)
        if let idempotencyKey { idempotency.remember(idempotencyKey, id: job.id, until: now() + limits.retention) }
        return (job.id, finished)
    }

    func submitListening(_ request: JobRequest, sync: Bool, retained: Bool, newestOnly: Bool) throws(APIError)
        -> (id: String, events: AsyncStream<JobEvent>)
    {
        let (events, continuation) = AsyncStream<JobEvent>.makeStream(
            bufferingPolicy: newestOnly ? .bufferingNewest(64) : .unbounded)
        return (try submit(request, sync: sync, events: continuation, retained: retained).job.id, events)
    }

    func health() -> JSONValue {
        let (queued, running, counters) = counts()
        let state = context.health.current
        return [
            "jobs": [
                "completed": .integer(Int64(counters.completed)), "failed": .integer(Int64(counters.failed)),
                "inProgress": .integer(Int64(running)), "inQueue": .integer(Int64(queued)),
                "retried": .integer(Int64(counters.retried)),
            ],
            "workers": [
                "idle": state == .ready && running == 0 ? 1 : 0, "running": state == .ready && running > 0 ? 1 : 0,
                "initializing": state == .initializing ? 1 : 0, "ready": state == .ready ? 1 : 0, "throttled": 0,
                "unhealthy": { if case .failed = state { return 1 } else { return 0 } }(),
            ],
        ]
    }
}

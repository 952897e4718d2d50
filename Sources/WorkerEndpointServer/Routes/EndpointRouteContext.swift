import EndpointAPI
import Hummingbird
import Logging
import WorkerJSON
import WorkerRuntime

/// What a route group may use: the server's request guards and its job path. Jobs submitted here
/// share the queue, concurrency, timeouts and metrics of `/run`.
package struct EndpointRouteContext: Sendable {
    let store: JobStore
    let health: WorkerHealth

    package var limits: WorkerConfiguration.Limits { store.limits }
    package var logger: Logger { store.logger }
    package var metrics: WorkerMetrics { store.metrics }

    /// Throws 503 (with the reason) until the handler has started, or when it is unhealthy.
    package func ensureReady() throws(APIError) {
        switch health.current {
        case .ready: return
        case .initializing: throw .unavailable("the worker is still starting; retry shortly")
        case .failed(let reason): throw .unavailable("the worker is unhealthy: \(reason)")
        }
    }

    /// The request body as JSON: 413 over `limit` bytes, 400 (saying where) when malformed.
    package func readJSON(_ request: Request, limit: Int) async throws -> JSONValue {
        if let length = request.headers[.contentLength].flatMap(Int.init), length > limit {
            throw APIError.tooLarge("the request body is \(length) bytes; the limit here is \(limit) bytes")
        }
        var request = request
        let buffer: ByteBuffer
        do {
            buffer = try await request.collectBody(upTo: limit)
        } catch {
            throw APIError.tooLarge("the request body is over the limit of \(limit) bytes")
        }
        do {
            return try JSONValue.parse(buffer.readableBytesView)
        } catch {
            throw APIError.badRequest("the request body is \(error)")
        }
    }

    /// Queues a job (as /run, or /runsync with `sync`); returns its id.
    package func submit(_ request: JobRequest, sync: Bool) throws(APIError) -> String {
        try store.submit(request, sync: sync).job.id
    }

    /// Queues a job whose chunks and final report come as events, from its very first chunk.
    package func submitListening(_ request: JobRequest, sync: Bool) throws(APIError) -> (id: String, events: AsyncStream<JobEvent>) {
        let (events, continuation) = AsyncStream<JobEvent>.makeStream()
        return (try store.submit(request, sync: sync, events: continuation).job.id, events)
    }

    /// Waits until the job is final or `timeout` passes; nil for an unknown job.
    package func waitForFinal(_ id: String, timeout: Duration) async -> JobStatusReport? {
        await store.waitForFinal(id, timeout: timeout)
    }

    /// A job's stream chunks as they come, then its final report; nil for an unknown job.
    package func events(_ id: String) -> AsyncStream<JobEvent>? {
        store.listen(id)
    }

    /// Stops a job (as `/cancel` does, or with another final status).
    package func stop(_ id: String, as status: JobStatus = .cancelled, error: String? = nil) {
        store.stop(id, as: status, error: error)
    }
}

/// What happens to a job, as a route group sees it.
package enum JobEvent: Sendable {
    case chunk(JSONValue)
    case finished(JobStatusReport)
}

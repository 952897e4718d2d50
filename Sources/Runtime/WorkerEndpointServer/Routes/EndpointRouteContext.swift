import EndpointAPI
import HTTPTypes
import Hummingbird
import Logging
import WorkerJSON
import WorkerRuntime

/// What a route group may use: the server's request guards and its job path. Jobs submitted here
/// share the queue, concurrency, timeouts and metrics of `/run`.
package struct EndpointRouteContext: Sendable {
    let store: any JobBackend
    /// The worker this server runs: its configuration, tools and handler.
    package let worker: WorkerContext
    package let limits: ServerLimits
    /// How the server is served; nil for a job path without HTTP (`EndpointJobHost`).
    package let server: ServerConfiguration?

    init(store: any JobBackend, worker: WorkerContext, limits: ServerLimits, server: ServerConfiguration? = nil) {
        self.store = store
        self.worker = worker
        self.limits = limits
        self.server = server
    }

    var health: WorkerHealth { worker.health }
    package var logger: Logger { worker.logger }
    package var metrics: WorkerMetrics { worker.metrics }

    /// Throws 503 (with the reason) until the handler has started, or when it is unhealthy.
    package func ensureReady() throws(APIError) {
        switch health.current {
        case .ready: return
        case .initializing: throw .unavailable("the worker is still starting; retry shortly")
        case .failed(let reason): throw .unavailable("the worker is unhealthy: \(reason)")
        }
    }

    /// Waits while the handler is still starting (a process an agent has just launched), at most
    /// `limit`; then `ensureReady` tells what became of it.
    package func waitForStart(limit: Duration = .seconds(600)) async {
        let deadline = ContinuousClock.now + limit
        while health.current == .initializing, ContinuousClock.now < deadline, !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(20))
        }
    }

    /// The request body as JSON: 413 over `limit` bytes, 400 (saying where) when malformed.
    package func readJSON(_ request: Request, limit: Int) async throws(APIError) -> JSONValue {
        try await readJSONBody(request, limit: limit).json
    }

    /// `readJSON`, with the body's length.
    package func readJSONBody(_ request: Request, limit: Int) async throws(APIError) -> (json: JSONValue, bytes: Int) {
        let buffer = try await readBody(request, limit: limit)
        do {
            return (try JSONValue.parse(buffer.readableBytesView), buffer.readableBytes)
        } catch {
            throw APIError.badRequest("the request body is \(error)")
        }
    }

    /// The headers `WorkerOptions.recordedHeaders` names, as the job's fields.
    package func recordHeaders(_ headers: HTTPFields, in request: inout JobRequest) {
        for (header, field) in worker.options.recordedHeaders {
            if let name = HTTPField.Name(header), let value = headers[name] { request.extra[field] = .string(value) }
        }
    }

    /// The request body, refused (413) over `limit` bytes, by its declared length when it has one.
    package func readBody(_ request: Request, limit: Int) async throws(APIError) -> ByteBuffer {
        if let length = request.headers.firstValue(.contentLength).flatMap(Int.init), length > limit {
            throw APIError.tooLarge("the request body is \(length) bytes; the limit here is \(limit) bytes")
        }
        do {
            // The body itself, not `collectBody`: that copies the request to store the collected
            // buffer in it, which nobody reads again.
            return try await request.body.collect(upTo: limit)
        } catch {
            throw APIError.tooLarge("the request body is over the limit of \(limit) bytes")
        }
    }

    /// Queues a job (as /run, or /runsync with `sync`); returns its id.
    package func submit(_ request: JobRequest, sync: Bool) async throws(APIError) -> String {
        try await store.submit(request, sync: sync, requestBytes: nil, idempotencyKey: nil).id
    }

    /// Queues a /runsync job; with its report when it already finished (a job that never
    /// suspended runs on the caller's thread), else for `waitForFinal`.
    package func submitSync(_ request: JobRequest) async throws(APIError) -> (id: String, finished: JobStatusReport?) {
        try await store.submit(request, sync: true, requestBytes: nil, idempotencyKey: nil)
    }

    /// Queues a job whose chunks and final report come as events, from its very first chunk.
    /// With `retained` false the result is not kept once final (the events were its only reader).
    /// With `newestOnly`, a reader slower than the job sees only the newest 64 events (the final
    /// report is always the last): for readers to whom each update supersedes the one before
    /// (MCP's progress), so a job that reports 100,000 times in a burst holds 64, not 100,000.
    package func submitListening(
        _ request: JobRequest, sync: Bool, retained: Bool = true, newestOnly: Bool = false
    ) async throws(APIError) -> (id: String, events: AsyncStream<JobEvent>) {
        try await store.submitListening(request, sync: sync, retained: retained, newestOnly: newestOnly)
    }

    /// Waits until the job is final or `timeout` passes; nil for an unknown job.
    package func waitForFinal(_ id: String, timeout: Duration) async -> JobStatusReport? {
        await store.waitForFinal(id, timeout: timeout)
    }

    /// A job's stream chunks as they come, then its final report; nil for an unknown job.
    package func events(_ id: String) async -> AsyncStream<JobEvent>? {
        await store.listen(id)
    }

    /// Cancels a job from where nothing can wait (a cancellation handler): at once in the
    /// in-process store, in a task of its own for a backend on a server.
    package func stopSoon(_ id: String) {
        if let local = store as? JobStore {
            local.stop(id, as: .cancelled)
        } else {
            Task { await stop(id) }
        }
    }

    /// Stops a job (as `/cancel` does, or with another final status).
    package func stop(_ id: String, as status: JobStatus = .cancelled, error: String? = nil) async {
        do {
            try await store.stop(id, as: status, error: error)
        } catch {
            logger.warning("Stopping job \(id) failed: \(error.message)")
        }
    }
}

/// What happens to a job, as a route group sees it.
package enum JobEvent: Sendable {
    /// A `context.progress` update.
    case progress(JSONValue)
    case chunk(JSONValue)
    case finished(JobStatusReport)
}

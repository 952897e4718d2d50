import HTTPTypes
import Hummingbird
import Logging
import NIOCore

/// RunPod's public endpoint API served by one handler process (`--local`, or load-balancing mode):
/// the same routes under `/` and `/v2/{endpoint id}/`, so real clients work unmodified.
struct LocalServer: Sendable {
    let store: LocalJobStore
    let health: ServerHealth
    let configuration: ServerConfiguration
    let metrics: WorkerMetrics
    let logger: Logger

    func makeRouter() -> Router<BasicRequestContext> {
        let router = Router()
        if let key = configuration.apiKey {
            router.add(middleware: APIKeyMiddleware(key: Array(key.utf8), healthPath: configuration.healthPath))
        }
        if store.configuration.podIDIsSet {
            router.add(middleware: WorkerIDMiddleware(workerID: store.configuration.workerID))
        }
        if configuration.healthPort == nil || configuration.healthPort == configuration.port {
            router.get(RouterPath(configuration.healthPath)) { _, _ in ping() }
        }
        router.get("metrics") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4"],
                body: .init(byteBuffer: ByteBuffer(bytes: metrics.render())))
        }
        addEndpointRoutes(to: router)
        addEndpointRoutes(to: router.group("v2/:endpoint"))
        return router
    }

    /// A router with only the health check, for `PORT_HEALTH` when it differs from `PORT`.
    func makeHealthRouter() -> Router<BasicRequestContext> {
        let router = Router()
        router.get(RouterPath(configuration.healthPath)) { _, _ in ping() }
        return router
    }

    func ping() -> Response {
        switch health.current {
        case .initializing: return Response(status: .noContent)
        case .ready: return .json(["status": "healthy"])
        case .failed(let reason): return .json(["status": "unhealthy", "error": .string(reason)], status: .serviceUnavailable)
        }
    }

    private func addEndpointRoutes(to router: some RouterMethods<BasicRequestContext>) {
        router.post("run") { request, _ in try await submit(request, sync: false) }
        router.post("runsync") { request, context in try await runSync(request, context: context) }
        for method in [HTTPRequest.Method.get, .post] {
            router.on("status/:id", method: method) { _, context in try status(context) }
            router.on("stream/:id", method: method) { _, context in
                let id = try jobID(context)
                guard let body = store.poll(id) else { throw notFound(id) }
                return Response.json(body)
            }
        }
        router.get("status-sync/:id") { request, context in
            let id = try jobID(context)
            _ = await store.waitForFinal(id, timeout: try waitParameter(request))
            return try status(context)
        }
        router.post("cancel/:id") { _, context in
            let id = try jobID(context)
            guard let body = store.stop(id, as: .cancelled) else { throw notFound(id) }
            return Response.json(body)
        }
        router.post("retry/:id") { _, context in Response.json(try store.retry(try jobID(context))) }
        router.post("purge-queue") { _, _ in Response.json(store.purgeQueue()) }
        router.get("health") { _, _ in Response.json(healthBody()) }
        OpenAIRoutes(server: self).add(to: router)
    }

    // MARK: Handlers

    private func submit(_ request: Request, sync: Bool) async throws -> Response {
        try ensureReady()
        let body = try await readJSON(request, limit: sync ? configuration.limits.runsyncBodyBytes : configuration.limits.runBodyBytes)
        let job = try store.submit(body, sync: sync)
        return .json(["id": .string(job.id), "status": .string(job.status.rawValue)])
    }

    private func runSync(_ request: Request, context: BasicRequestContext) async throws -> Response {
        try ensureReady()
        let wait = try waitParameter(request)
        let body = try await readJSON(request, limit: configuration.limits.runsyncBodyBytes)
        let job = try store.submit(body, sync: true)
        let now = ContinuousClock.now
        guard let finished = await store.waitForFinal(job.id, timeout: wait) else { throw notFound(job.id) }
        if finished.status.isFinal { return .json(finished.envelope(now: now, workerID: store.workerID)) }
        return .json(["id": .string(job.id), "status": .string(finished.status.rawValue)])
    }

    private func status(_ context: BasicRequestContext) throws -> Response {
        let id = try jobID(context)
        guard let envelope = store.envelope(id) else { throw notFound(id) }
        return .json(envelope)
    }

    func healthBody() -> JSONValue {
        let (queued, running, counters) = store.counts()
        let state = health.current
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

    // MARK: Helpers

    func ensureReady() throws(LocalAPIError) {
        switch health.current {
        case .ready: return
        case .initializing: throw .unavailable("the worker is still starting; retry shortly")
        case .failed(let reason): throw .unavailable("the worker is unhealthy: \(reason)")
        }
    }

    func readJSON(_ request: Request, limit: Int) async throws -> JSONValue {
        if let length = request.headers[.contentLength].flatMap(Int.init), length > limit {
            throw LocalAPIError.tooLarge("the request body is \(length) bytes; the limit here is \(limit) bytes")
        }
        var request = request
        let buffer: ByteBuffer
        do {
            buffer = try await request.collectBody(upTo: limit)
        } catch {
            throw LocalAPIError.tooLarge("the request body is over the limit of \(limit) bytes")
        }
        do {
            return try JSONValue.parse(buffer.readableBytesView)
        } catch {
            throw LocalAPIError.badRequest("the request body is \(error)")
        }
    }

    private func jobID(_ context: BasicRequestContext) throws -> String {
        guard let id = context.parameters.get("id"), !id.isEmpty else { throw LocalAPIError.badRequest("no job id in the path") }
        return id
    }

    private func waitParameter(_ request: Request) throws -> Duration {
        guard let raw = request.uri.queryParameters.get("wait") else { return .seconds(90) }
        guard let ms = Int(raw), ms >= 0 else {
            throw LocalAPIError.badRequest("wait must be a whole number of milliseconds, got \(raw)")
        }
        return .milliseconds(min(max(ms, 1000), 300_000))
    }

    func notFound(_ id: String) -> LocalAPIError {
        .notFound("job \(id) not found: unknown, or expired (TTL or result retention)")
    }
}

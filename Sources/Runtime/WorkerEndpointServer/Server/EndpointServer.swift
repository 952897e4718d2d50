import EndpointAPI
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle
import WorkerJSON
import WorkerRuntime

/// RunPod's public endpoint API served by one handler process (`--local`, or load-balancing mode):
/// the same routes under `/` and `/v2/{endpoint id}/`, so real clients work unmodified.
package struct EndpointServer: Sendable {
    /// Where jobs live: the in-process store, or a backend a feature brought (the fleet's).
    let store: any JobBackend
    /// What keeps the backend (the store's janitor and the handler's lifecycle, or the fleet's).
    let backendServices: [any Service]
    let context: WorkerContext
    let configuration: ServerConfiguration
    let metrics: PrometheusMetrics
    let routeGroups: [EndpointRouteGroup]

    let health: WorkerHealth
    /// Made once: every job route uses it, and building it copied the server's configuration.
    let routeContext: EndpointRouteContext
    /// Host, Origin and body type, checked on every route but the health check.
    let requestGuard: RequestGuard
    /// Paths a route group authenticates itself (MCP with OAuth): the API-key check skips them.
    let authenticatedByGroup: @Sendable (_ path: String) -> Bool

    /// The server for `context`'s handler; `now` is the job store's clock (tests move it).
    init(
        context: WorkerContext, configuration: ServerConfiguration, metrics: PrometheusMetrics,
        now: @escaping @Sendable () -> ContinuousClock.Instant = { .now }
    ) throws {
        let hosting = try JobBackendProvider.hosting(for: context, limits: configuration.limits, now: now)
        self.store = hosting.backend
        self.backendServices = hosting.services
        self.context = context
        self.configuration = configuration
        self.health = context.health
        self.routeContext = EndpointRouteContext(store: store, worker: context, limits: configuration.limits, server: configuration)
        self.metrics = metrics
        self.routeGroups = [OpenAIRoutes.group] + context.contributions(of: EndpointRouteGroup.self)
        let routes = routeContext
        let ownChecks = routeGroups.compactMap { $0.authenticatesItself?(routes) }
        self.authenticatedByGroup = { path in ownChecks.contains { $0(path) } }
        var requestGuard = RequestGuard(
            policy: HostOriginPolicy(server: configuration, endpointID: context.configuration.endpointID), healthPath: configuration.healthPath)
        requestGuard.handlerCheck = context.options.refusesRequest
        self.requestGuard = requestGuard
    }

    package func makeRouter() -> Router<EndpointRequestContext> {
        let router = Router(context: EndpointRequestContext.self)
        // First: a refused request learns nothing else (not even whether its key is right).
        router.add(middleware: RequestGuardMiddleware(requestGuard: requestGuard, render: refusalResponse))
        if let key = configuration.apiKey {
            router.add(middleware: APIKeyMiddleware(key: Array(key.utf8), healthPath: configuration.healthPath, skips: authenticatedByGroup))
        }
        let limits = configuration.rateLimits
        if !limits.isEmpty {
            let store = context.contributions(of: (any RateLimitStore).self).first ?? InProcessRateLimitStore()
            router.add(
                middleware: RateLimitMiddleware(
                    limits: limits, store: store, fallback: InProcessRateLimitStore(), key: configuration.apiKey.map { Array($0.utf8) },
                    healthPath: configuration.healthPath, logger: context.logger))
        }
        if context.configuration.podIDIsSet {
            router.add(middleware: WorkerIDMiddleware(workerID: context.configuration.workerID))
        }
        if configuration.separateHealthPort == nil {
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
    package func makeHealthRouter() -> Router<EndpointRequestContext> {
        let router = Router(context: EndpointRequestContext.self)
        router.get(RouterPath(configuration.healthPath)) { _, _ in ping() }
        return router
    }

    /// The request guard's refusal, in the shape of the route group the path belongs to.
    private var refusalResponse: @Sendable (_ path: String, _ refusal: RequestGuard.Refusal) -> Response {
        let renderers = routeGroups.compactMap(\.refusal)
        return { path, refusal in
            for render in renderers {
                if let response = render(path, refusal.status, refusal.message) { return response }
            }
            return .json(["error": .string(refusal.message)], status: refusal.status)
        }
    }

    /// Whether a request is refused from its head alone (Host, Origin, body type, API key): the
    /// connection then answers its `Expect: 100-continue` with the refusal instead of inviting the
    /// body.
    func refusesFromHead(_ head: HTTPRequest) -> Bool {
        let path = RequestGuard.path(of: head)
        if requestGuard.refusal(path: path, authority: head.authority, headers: head.headerFields) != nil { return true }
        guard let key = configuration.apiKey, path != configuration.healthPath, !authenticatedByGroup(path) else { return false }
        return !APIKeyMiddleware<EndpointRequestContext>.presentsKey(head.headerFields, key: Array(key.utf8))
    }

    func ping() -> Response {
        switch health.current {
        case .initializing: return Response(status: .noContent)
        case .ready: return .json(["status": "healthy"])
        case .failed(let reason): return .json(["status": "unhealthy", "error": .string(reason)], status: .serviceUnavailable)
        }
    }

    private func addEndpointRoutes(to router: some RouterMethods<EndpointRequestContext>) {
        router.post("run") { request, context in try await submit(request, sync: false, path: context.parameters.get("endpoint")) }
        router.post("runsync") { request, context in try await runSync(request, path: context.parameters.get("endpoint")) }
        for method in [HTTPRequest.Method.get, .post] {
            router.on("status/:id", method: method) { _, context in try await status(context) }
            router.on("stream/:id", method: method) { _, context in
                let id = try jobID(context)
                guard let body = try await store.poll(id) else { throw notFound(id) }
                return Response.json(body)
            }
        }
        router.get("status-sync/:id") { request, context in
            let id = try jobID(context)
            // The wait's own report (a read fewer for a backend in Redis); without one, the status
            // route says what is known: 404, or 503 while the backend is out.
            if let report = await store.waitForFinal(id, timeout: try waitParameter(request)) { return Response.json(report) }
            return try await status(context)
        }
        router.post("cancel/:id") { _, context in
            let id = try jobID(context)
            guard let body = try await store.stop(id, as: .cancelled, error: nil) else { throw notFound(id) }
            return Response.json(body)
        }
        router.post("retry/:id") { _, context in Response.json(try await store.retry(try jobID(context))) }
        router.post("purge-queue") { _, _ in Response.json(try await store.purgeQueue()) }
        router.get("health") { _, _ in Response.json(try await store.health()) }
        router.head("health") { _, _ in Response(status: .ok, headers: [.contentType: "application/json"]) }
        let context = routeContext
        for group in routeGroups { group.add(router, context) }
    }

    // MARK: Handlers

    private func submit(_ request: Request, sync: Bool, path endpoint: String?) async throws -> Response {
        let context = routeContext
        try context.ensureReady()
        let limit = sync ? configuration.limits.runsyncBodyBytes : configuration.limits.runBodyBytes
        let body = try await context.readJSONBody(request, limit: limit)
        let key = try idempotencyKey(request)
        let (id, _) = try await store.submit(
            try jobRequest(body.json, path: endpoint, headers: request.headers), sync: sync, requestBytes: body.bytes, idempotencyKey: key)
        // Always IN_QUEUE, as on the platform, even when a free slot has started the job already.
        return .json(["id": .string(id), "status": .string(JobStatus.inQueue.rawValue)])
    }

    private func runSync(_ request: Request, path endpoint: String?) async throws -> Response {
        let context = routeContext
        try context.ensureReady()
        let wait = try waitParameter(request)
        let body = try await context.readJSONBody(request, limit: configuration.limits.runsyncBodyBytes)
        let (id, finished) = try await store.submit(
            try jobRequest(body.json, path: endpoint, headers: request.headers), sync: true, requestBytes: body.bytes, idempotencyKey: nil)
        // A job that finished on this thread (it never suspended) is answered at once.
        if let finished { return .json(finished) }
        guard let report = await store.waitForFinal(id, timeout: wait) else { throw notFound(id) }
        if report.status.isFinal { return .json(report) }
        return .json(["id": .string(id), "status": .string(report.status.rawValue)])
    }

    private func status(_ context: EndpointRequestContext) async throws -> Response {
        let id = try jobID(context)
        guard let report = try await store.report(id) else { throw notFound(id) }
        return .json(report)
    }

    /// `Idempotency-Key`: at most 256 printable ASCII characters (it becomes part of a key in the
    /// fleet's Redis), else a 400 saying so.
    private func idempotencyKey(_ request: Request) throws(APIError) -> String? {
        guard let name = HTTPField.Name("Idempotency-Key"), let key = request.headers[name] else { return nil }
        guard !key.isEmpty, key.utf8.count <= 256, key.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
            throw .badRequest("the Idempotency-Key header must be 1 to 256 printable ASCII characters without spaces")
        }
        return key
    }

    // MARK: Helpers

    /// The job of a request body; `path` is the `{id}` of `/v2/{id}/…`, recorded in the job as
    /// `endpointPath` for handlers that ask for it (`WorkerOptions.recordsEndpointPath`: the
    /// gateway, where it names an upstream).
    private func jobRequest(_ body: JSONValue, path: String? = nil, headers: HTTPFields) throws(APIError) -> JobRequest {
        var request: JobRequest
        do {
            request = try JobRequest(json: body)
        } catch {
            throw .badRequest(error.message)
        }
        if context.options.recordsEndpointPath, let path, let decoded = percentDecoded(path) { request.extra["endpointPath"] = .string(decoded) }
        routeContext.recordHeaders(headers, in: &request)
        return request
    }

    /// The job id in the path, percent-decoded (clients escape ids they did not make).
    private func jobID(_ context: EndpointRequestContext) throws -> String {
        guard let raw = context.parameters.get("id"), !raw.isEmpty else { throw APIError.badRequest("no job id in the path") }
        return percentDecoded(raw) ?? raw
    }

    private func waitParameter(_ request: Request) throws -> Duration {
        guard request.uri.query != nil, let raw = request.uri.queryParameters.get("wait") else { return EndpointLimits.defaultWait }
        guard let ms = Int64(raw), ms >= 0 else {
            throw APIError.badRequest("wait must be a whole number of milliseconds, got \(raw)")
        }
        return .milliseconds(min(max(ms, EndpointLimits.waitRange.lowerBound), EndpointLimits.waitRange.upperBound))
    }

    func notFound(_ id: String) -> APIError {
        .notFound("job \(id) not found: unknown, or expired (TTL or result retention)")
    }
}

/// `%XX` escapes decoded; nil when an escape is malformed or the result is not UTF-8.
func percentDecoded(_ text: String) -> String? {
    guard text.utf8.contains(UInt8(ascii: "%")) else { return text }
    var bytes: [UInt8] = []
    var iterator = text.utf8.makeIterator()
    while let byte = iterator.next() {
        guard byte == UInt8(ascii: "%") else {
            bytes.append(byte)
            continue
        }
        guard let high = iterator.next().flatMap(hexValue), let low = iterator.next().flatMap(hexValue) else { return nil }
        bytes.append(high << 4 | low)
    }
    return String(validating: bytes, as: UTF8.self)
}

private func hexValue(_ byte: UInt8) -> UInt8? {
    switch byte {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
    case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
    case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
    default: return nil
    }
}

extension EndpointServer {
    /// The in-process store, for tests that move its clock and read its counts.
    var localStore: JobStore {
        guard let store = store as? JobStore else { preconditionFailure("this server's jobs are not in process") }
        return store
    }
}

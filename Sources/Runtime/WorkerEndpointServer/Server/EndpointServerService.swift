import Hummingbird
import HummingbirdCore
import NIOCore
import Logging
import ServiceLifecycle
import WorkerRuntime

/// The HTTP modes as the worker's main service: the endpoint API (and `PORT_HEALTH`'s health
/// check), the job store's janitor, and the handler's lifecycle. On graceful shutdown the listeners
/// stop first (requests in flight finish), then queued jobs are dropped (and counted in the log),
/// running ones finish, the handler shuts down, and the janitor stops last.
struct EndpointServerService: Service {
    let server: EndpointServer

    func run() async throws {
        let configuration = server.configuration
        let logger = server.context.logger
        var services = server.backendServices
        let limits = configuration.limits
        let http = server.httpServer()
        let connections = ConnectionCap(limits.maxConnections, logger: logger)
        services.append(
            Application(
                router: server.makeRouter(), server: http,
                configuration: .init(
                    address: .hostname(configuration.host, port: configuration.port), availableConnectionsDelegate: connections),
                onServerRunning: { channel in
                    let kind = configuration.kind == .local ? "RunPod endpoint API (local)" : "load-balancing worker"
                    let port = channel.localAddress?.port ?? configuration.port
                    logger.info("Serving the \(kind) on http://\(configuration.host):\(port) (also under /v2/<endpoint id>/)")
                }, logger: logger))
        if let healthPort = configuration.separateHealthPort {
            services.append(
                Application(
                    router: server.makeHealthRouter(), server: http,
                    configuration: .init(
                        address: .hostname(configuration.host, port: healthPort),
                        availableConnectionsDelegate: MaximumAvailableConnections(64, logger: logger)),
                    onServerRunning: { channel in
                        let port = channel.localAddress?.port ?? healthPort
                        logger.info("Serving the health check on http://\(configuration.host):\(port)\(configuration.healthPath)")
                    }, logger: logger))
        }
        let group = ServiceGroup(
            configuration: .init(
                services: services.map {
                    .init(service: $0, successTerminationBehavior: .gracefullyShutdownGroup, failureTerminationBehavior: .gracefullyShutdownGroup)
                }, logger: logger))
        try await withGracefulShutdownHandler {
            try await group.run()
        } onGracefulShutdown: {
            Task { await group.triggerGracefulShutdown() }
        }
    }
}

extension EndpointServer {
    /// HTTP/1.1 with the connection-level handling the routes rely on: `Expect: 100-continue`
    /// and refusals before the body (`RequestFlowHandler`), keep-alive as the client asked
    /// (`HTTP1KeepAliveHandler`), hang-up signals (`ClientHangUpHandler`) and the idle timeout.
    func httpServer() -> HTTPServerBuilder {
        let limits = configuration.limits
        // The routes' own limits (413 beyond), so a 100 Continue is never sent for a body they refuse.
        let bodyLimit: @Sendable (String) -> Int = { path in
            let route = path.split(separator: "?", maxSplits: 1).first.map(String.init) ?? path
            if route.hasSuffix("/run") { return limits.runBodyBytes }
            return max(limits.runBodyBytes, limits.runsyncBodyBytes)
        }
        let server = self
        // Facing the network in load-balancing mode: idle and header-less connections are closed,
        // and connections are capped below the descriptor limit (the health listener shares the cap).
        return HTTPServerBuilder.http1(
            configuration: .init(
                additionalChannelHandlers: [
                    RequestFlowHandler(bodyLimit: bodyLimit, refusesFromHead: { server.refusesFromHead($0) }), ClientHangUpHandler(),
                ],
                idleTimeout: .nanoseconds(Int64(limits.idleTimeout / .nanoseconds(1)))))
    }
}

/// The endpoint server's job path without its HTTP listener, for a transport of another module
/// (MCP over standard input and output): jobs queue, run, time out and are counted as `/run`'s do.
package struct EndpointJobHost: Sendable {
    let store: any JobBackend
    let backendServices: [any Service]
    let context: WorkerContext

    package init(context: WorkerContext) throws {
        let hosting = try JobBackendProvider.hosting(for: context, limits: ServerLimits())
        self.store = hosting.backend
        self.backendServices = hosting.services
        self.context = context
    }

    package var routeContext: EndpointRouteContext { EndpointRouteContext(store: store, worker: context, limits: ServerLimits()) }

    /// Starts the handler, runs `body` until it returns or the worker is told to stop, then lets
    /// the running jobs finish and shuts the handler down.
    package func run(_ body: @escaping @Sendable (EndpointRouteContext) async throws -> Void) async throws {
        let context = routeContext
        let services: [any Service] = backendServices + [BodyService { try await body(context) }]
        let group = ServiceGroup(
            configuration: .init(
                services: services.map {
                    .init(service: $0, successTerminationBehavior: .gracefullyShutdownGroup, failureTerminationBehavior: .gracefullyShutdownGroup)
                }, logger: self.context.logger))
        try await withGracefulShutdownHandler {
            try await group.run()
        } onGracefulShutdown: {
            Task { await group.triggerGracefulShutdown() }
        }
    }

    private struct BodyService: Service {
        let body: @Sendable () async throws -> Void
        func run() async throws { try await cancelWhenGracefulShutdown { try await body() } }
    }
}

/// Enforces the job store's deadlines (timeouts, TTL, retention, waits) until shutdown.
struct JanitorService: Service {
    let store: JobStore

    func run() async throws {
        await cancelWhenGracefulShutdown { await store.runJanitor() }
    }
}

/// Starts the handler while the health check says 204; on shutdown drains the jobs and shuts the
/// handler down.
struct HandlerLifecycleService: Service {
    let store: JobStore

    func run() async throws {
        _ = await store.context.startHandler()
        try? await gracefulShutdown()
        let logger = store.context.logger
        let dropped = store.dropQueued()
        let running = store.counts().running
        if dropped > 0 || running > 0 {
            logger.info("Shutting down: \(dropped) queued job(s) dropped; waiting for \(running) running job(s) to finish.")
        }
        await store.drain()
        await store.context.shutdownHandler()
    }
}

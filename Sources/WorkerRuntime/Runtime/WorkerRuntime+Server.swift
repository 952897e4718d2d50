import Hummingbird
import Logging
import ServiceLifecycle
import UnixSignals

extension WorkerRuntime {
    /// The handler the runtime runs: the passthrough in front when an OpenAI upstream is configured.
    func effectiveHandler(_ configuration: WorkerConfiguration) -> any RawJobHandler {
        guard let openAI = configuration.openAI else { return handler }
        return OpenAIPassthroughHandler(inner: handler, upstream: openAI)
    }

    /// The endpoint API server for this handler (the composition root the tests use too).
    func makeServer(_ server: ServerConfiguration, configuration: WorkerConfiguration, logger: Logger) -> LocalServer {
        var settings = LocalJobStore.Settings()
        settings.retention = server.limits.retention
        settings.syncRetention = server.limits.syncRetention
        settings.webhookRetryDelays = server.limits.webhookRetryDelays
        settings.maxRetainedJobs = server.limits.maxRetainedResults
        settings.maxRetainedSyncJobs = server.limits.maxRetainedSyncResults
        let metrics = WorkerMetrics()
        let runtimeHandler = effectiveHandler(configuration)
        let store = LocalJobStore(
            handler: runtimeHandler, options: options, configuration: configuration, settings: settings,
            metrics: metrics, logger: logger)
        return LocalServer(
            store: store, health: ServerHealth(handlerHealthy: { runtimeHandler.isHealthy }), configuration: server,
            metrics: metrics, logger: logger)
    }

    /// Serves until SIGTERM or SIGINT; the handler starts in the background while `/ping` says 204.
    func runServer(_ server: ServerConfiguration, configuration: WorkerConfiguration, logger: Logger) async -> Int32 {
        if server.kind == .local, !server.isLoopback, server.apiKey == nil, !server.allowUnauthenticated {
            logger.error(
                "Refusing to serve on \(server.host) without an API key: set RUNPOD_API_KEY, or pass --allow-unauthenticated")
            return 1
        }
        let local = makeServer(server, configuration: configuration, logger: logger)
        var services: [any Service] = [
            Application(
                router: local.makeRouter(), configuration: .init(address: .hostname(server.host, port: server.port)),
                onServerRunning: { _ in
                    let kind = server.kind == .local ? "RunPod endpoint API (local)" : "load-balancing worker"
                    logger.info("Serving the \(kind) on http://\(server.host):\(server.port) (also under /v2/<endpoint id>/)")
                }, logger: logger)
        ]
        if let healthPort = server.healthPort, healthPort != server.port {
            services.append(
                Application(
                    router: local.makeHealthRouter(), configuration: .init(address: .hostname(server.host, port: healthPort)),
                    logger: logger))
        }
        services.append(StartupService(handler: local.store.handler, health: local.health, logger: logger))
        services.append(JanitorService(store: local.store))
        let group = ServiceGroup(
            configuration: .init(
                services: services.map { .init(service: $0) }, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        do {
            try await group.run()
            return 0
        } catch {
            logger.error("The server stopped: \(error)")
            return 1
        }
    }
}

/// Enforces the job store's deadlines (timeouts, TTL, retention, waits) until shutdown.
struct JanitorService: Service {
    let store: LocalJobStore

    func run() async throws {
        await cancelWhenGracefulShutdown { await store.runJanitor() }
    }
}

/// Runs the handler's start-up hook while the health check reports 204, then stays until shutdown.
struct StartupService: Service {
    let handler: any RawJobHandler
    let health: ServerHealth
    let logger: Logger

    func run() async throws {
        do {
            try await handler.start()
            health.set(.ready)
        } catch {
            logger.error("The handler's start-up failed: \(error)")
            health.set(.failed("start-up failed: \(error)"))
        }
        try? await gracefulShutdown()
    }
}

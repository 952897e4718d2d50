import CoreMetrics
import CurlHTTP
import Logging
import ServiceLifecycle
import Synchronization

extension WorkerRuntime {
    /// Runs the worker until it is done (one-shot), told to stop (graceful shutdown), or it fails.
    /// A runtime runs once: a second call throws. The services handed to `init` run in the same
    /// group, started first and stopped last, so jobs in flight can still use them.
    public func run() async throws {
        try launch.withLock { launch throws(WorkerRuntimeError) in
            guard !launch.started else { throw .alreadyRunning }
            launch.started = true
        }
        let resolved = try resolve()
        let logger = self.logger ?? Logger(label: "worker")
        if resolved.rpDebugger {
            logger.warning("--rp_debugger is accepted for runpod-python's command lines but adds nothing here: results carry no rp_debugger output")
        }
        let client = CurlHTTPClient(name: "worker-http", userAgent: "swift-worker-runtime/\(WorkerRuntimeVersion.current)")
        let context = makeContext(
            mode: resolved.mode, configuration: resolved.configuration, settings: resolved.settings, client: client, logger: logger,
            tools: resolved.tools)
        let outcome = OneShotOutcome()
        do {
            let main = try mainService(for: resolved.mode, context: context, outcome: outcome)
            try await runGroup(main: main, logger: logger)
        } catch {
            await client.shutdown()
            throw error
        }
        await client.shutdown()
        if let failure = outcome.failure { throw failure }
    }

    /// The context features and the runtime's own services build on.
    package func makeContext(
        mode: WorkerMode, configuration: WorkerConfiguration, settings: FeatureSettings = FeatureSettings(), client: CurlHTTPClient,
        logger: Logger, tools: ToolCatalog? = nil
    ) -> WorkerContext {
        let factory = features.lazy.compactMap { $0.metricsFactory?(mode) }.first ?? MetricsSystem.factory
        var context = WorkerContext(
            handler: handler, options: options, configuration: configuration, settings: settings, logger: logger, httpClient: client,
            metrics: WorkerMetrics(factory: factory), features: features, tools: tools)
        for feature in features {
            if let decorate = feature.decorate { context.handler = decorate(context.handler, context) }
        }
        return context
    }

    private func mainService(for mode: WorkerMode, context: WorkerContext, outcome: OneShotOutcome) throws -> any Service {
        switch mode {
        case .oneShot(let testInput):
            return OneShotService(context: context, testInput: testInput, outcome: outcome)
        case .queue(let platform):
            return QueueWorkerService(context: context, platform: platform)
        case .feature(let featureMode):
            for feature in features {
                if let service = try feature.serve?(mode, context) { return service }
            }
            // Only a feature claims a feature mode, so this is a feature that claimed without serving.
            throw WorkerRuntimeError.featureMissing("no feature serves the mode '\(featureMode.name)' it was started in")
        }
    }

    /// The handler's services and the worker in one group, which ends when the worker ends and
    /// passes a graceful shutdown of the runtime on to all of them.
    private func runGroup(main: any Service, logger: Logger) async throws {
        var configurations = services.map { service in
            // A service that finishes early (a model loader) is fine; one that fails stops the worker.
            ServiceGroupConfiguration.ServiceConfiguration(
                service: service, successTerminationBehavior: .ignore, failureTerminationBehavior: .gracefullyShutdownGroup)
        }
        configurations.append(
            .init(service: main, successTerminationBehavior: .gracefullyShutdownGroup, failureTerminationBehavior: .gracefullyShutdownGroup))
        let group = ServiceGroup(configuration: ServiceGroupConfiguration(services: configurations, logger: logger))
        try await withGracefulShutdownHandler {
            try await group.run()
        } onGracefulShutdown: {
            Task { await group.triggerGracefulShutdown() }
        }
    }
}

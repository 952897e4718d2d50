import CurlHTTP
import Logging

/// What the runtime's modes and features build on: the handler as the runtime runs it (wrapped by
/// the OpenAI passthrough and features), the settings, and the shared parts (HTTP client,
/// metrics, start-up state). One per run.
package struct WorkerContext: Sendable {
    package var handler: any RawJobHandler
    package let options: WorkerOptions
    package let configuration: WorkerConfiguration
    /// The features' settings, as each read them at start-up (`WorkerFeature.configure`).
    package let settings: FeatureSettings
    package let logger: Logger
    /// The runtime's outbound HTTP client (platform, webhooks, passthrough); shut down after the run.
    package let httpClient: CurlHTTPClient
    package let metrics: WorkerMetrics
    package let health: WorkerHealth
    package let features: [WorkerFeature]
    /// The tools agents may call (over MCP), from `WorkerOptions.tools`.
    package let tools: ToolCatalog

    package init(
        handler: any RawJobHandler, options: WorkerOptions, configuration: WorkerConfiguration,
        settings: FeatureSettings = FeatureSettings(), logger: Logger, httpClient: CurlHTTPClient, metrics: WorkerMetrics,
        features: [WorkerFeature] = [], tools: ToolCatalog? = nil
    ) {
        self.settings = settings
        self.tools = tools ?? (try? ToolCatalog(options: options, executable: "worker")) ?? ToolCatalog(name: "worker")
        self.handler = handler
        self.options = options
        self.configuration = configuration
        self.logger = logger
        self.httpClient = httpClient
        self.metrics = metrics
        self.features = features
        let handler = handler
        self.health = WorkerHealth(handlerHealthy: { handler.isHealthy })
    }

    /// Runs one job at a time through the handler, delivering to `sink`.
    package func runner(sink: any ResultSink, deliveries: ResultDeliveryQueue? = nil) -> JobRunner {
        JobRunner(settings: runnerSettings, sink: sink, deliveries: deliveries)
    }

    /// What a runner shares with every other runner of this context; made once by callers that
    /// make a runner per job.
    package var runnerSettings: JobRunner.Settings {
        JobRunner.Settings(handler: handler, options: options, configuration: configuration, metrics: metrics, logger: logger)
    }

    /// Every contribution of type `T` the features brought (route groups, for example).
    package func contributions<T>(of type: T.Type) -> [T] {
        features.flatMap(\.contributions).compactMap { $0 as? T }
    }

    /// Runs the handler's `start()`, recording the outcome in `health`; false when it failed.
    package func startHandler() async -> Bool {
        do {
            try await handler.start()
            health.set(.ready)
            return true
        } catch {
            logger.error("The handler's start-up failed: \(error)")
            health.set(.failed("start-up failed: \(error)"))
            return false
        }
    }

    /// Runs the handler's `shutdown()` (once the jobs in flight are done); a failure is logged.
    package func shutdownHandler() async {
        do {
            try await handler.shutdown()
        } catch {
            logger.error("The handler's shutdown failed: \(error)")
        }
    }
}

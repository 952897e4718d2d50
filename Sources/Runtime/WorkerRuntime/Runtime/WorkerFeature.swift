import CoreMetrics
import ServiceLifecycle

/// An optional part of the runtime that lives in a module of its own, so a worker links only what
/// it uses: the endpoint API server (`.endpointServer()` in `WorkerEndpointServer`) and, built the
/// same way, whatever attaches next. Pass features to `WorkerRuntime(features:)`.
///
/// A feature is a set of hooks, each optional; only modules of this package create features.
public struct WorkerFeature: Sendable {
    /// For logs and errors.
    package let name: String
    /// Where the runtime's job metrics go in a mode; the first feature that has a factory for the
    /// mode wins over the process-wide `MetricsSystem` (the endpoint server brings a Prometheus
    /// registry for `/metrics`, in the HTTP modes only: a queue worker never builds one).
    package let metricsFactory: (@Sendable (WorkerMode) -> (any MetricsFactory)?)?
    /// Wraps the handler the runtime runs (response caches, for example). `context.handler` is
    /// the handler as wrapped so far.
    package let decorate: (@Sendable (any RawJobHandler, WorkerContext) -> any RawJobHandler)?
    /// Serves a mode the core does not (the HTTP modes): the worker's main service, or nil when
    /// the mode is not this feature's.
    package let serve: (@Sendable (WorkerMode, WorkerContext) throws -> (any Service)?)?
    /// Values other features look for in `WorkerContext.features`, such as route groups for the
    /// endpoint server.
    package let contributions: [any Sendable]
    /// The flags this feature reads; the runtime parses them and hands their values to `configure`.
    package let flags: [FeatureFlag]
    /// Reads the feature's settings from the environment and its flags, once, at start-up, and
    /// says which mode it would serve; an error names the variable or flag.
    package let configure: (@Sendable (FeatureSetup) throws(ConfigurationError) -> FeatureConfiguration)?

    package init(
        name: String, flags: [FeatureFlag] = [],
        configure: (@Sendable (FeatureSetup) throws(ConfigurationError) -> FeatureConfiguration)? = nil,
        metricsFactory: (@Sendable (WorkerMode) -> (any MetricsFactory)?)? = nil,
        decorate: (@Sendable (any RawJobHandler, WorkerContext) -> any RawJobHandler)? = nil,
        serve: (@Sendable (WorkerMode, WorkerContext) throws -> (any Service)?)? = nil, contributions: [any Sendable] = []
    ) {
        self.name = name
        self.flags = flags
        self.configure = configure
        self.metricsFactory = metricsFactory
        self.decorate = decorate
        self.serve = serve
        self.contributions = contributions
    }
}

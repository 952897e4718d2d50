import WorkerJSON

/// The one handler shape the runtime runs. Typed, JSON, streaming and closure handlers are
/// lifted into it by small adapters.
public protocol RawJobHandler: Sendable {
    /// Runs one job: put the output in `output` (respond once, or yield chunks), or throw.
    func handle(_ job: Job, output: JobOutputWriter, context: JobContext) async throws

    /// Runs once before the worker takes jobs: load models, open connections. A failure stops a
    /// queue worker and makes an HTTP worker's health check answer 503.
    func start() async throws

    /// Runs once when the worker stops, after the jobs in flight have finished and posted their
    /// results, while the services handed to the runtime still run: flush, close, release.
    func shutdown() async throws

    /// Whether the handler can take work; load-balancing health checks report it.
    var isHealthy: Bool { get }
}

extension RawJobHandler {
    public func start() async throws {}
    public func shutdown() async throws {}
    public var isHealthy: Bool { true }
}

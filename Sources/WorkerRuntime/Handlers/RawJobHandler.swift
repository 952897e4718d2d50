/// The one handler shape the runtime runs. Typed, JSON, streaming and closure handlers are
/// lifted into it by small adapters.
public protocol RawJobHandler: Sendable {
    /// Runs one job: put the output in `output` (respond once, or yield chunks), or throw.
    func handle(_ job: Job, output: JobOutputWriter, context: JobContext) async throws

    /// Runs once before the worker takes jobs: load models, open connections.
    func start() async throws

    /// Whether the handler can take work; load-balancing health checks report it.
    var isHealthy: Bool { get }
}

extension RawJobHandler {
    public func start() async throws {}
    public var isHealthy: Bool { true }
}

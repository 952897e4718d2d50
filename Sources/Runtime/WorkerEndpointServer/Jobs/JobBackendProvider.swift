import ServiceLifecycle
import WorkerRuntime

/// A job backend another feature brings in place of the in-process store (the fleet's, on Redis),
/// with the services that keep it (the handler's lifecycle, a worker loop, subscriptions), run
/// beside the HTTP listener and stopped after it.
package struct JobBackendHosting: Sendable {
    package let backend: any JobBackend
    package let services: [any Service]

    package init(backend: any JobBackend, services: [any Service]) {
        self.backend = backend
        self.services = services
    }
}

/// Contributed by a feature (`WorkerFeature.contributions`): the endpoint server asks it for a
/// backend once the settings are read; nil keeps the in-process store.
package struct JobBackendProvider: Sendable {
    package let make: @Sendable (WorkerContext, ServerLimits) throws -> JobBackendHosting?

    package init(make: @escaping @Sendable (WorkerContext, ServerLimits) throws -> JobBackendHosting?) {
        self.make = make
    }

    /// The first contributed backend that takes this worker, else the in-process store with its
    /// janitor and the handler's lifecycle.
    static func hosting(
        for context: WorkerContext, limits: ServerLimits, now: @escaping @Sendable () -> ContinuousClock.Instant = { .now }
    ) throws -> JobBackendHosting {
        for provider in context.contributions(of: JobBackendProvider.self) {
            if let hosting = try provider.make(context, limits) { return hosting }
        }
        let store = JobStore(context: context, limits: limits, now: now)
        return JobBackendHosting(backend: store, services: [JanitorService(store: store), HandlerLifecycleService(store: store)])
    }
}

import Synchronization
import WorkerRuntime

extension WorkerFeature {
    /// RunPod's endpoint API over HTTP, for `--local` and load-balancing endpoints (`PORT`):
    /// `/run`, `/runsync`, `/status`, `/stream`, `/cancel`, `/retry`, `/purge-queue`, `/health`,
    /// the health check (`/ping`), Prometheus `/metrics` and the OpenAI routes, under `/` and
    /// `/v2/{endpoint id}/`. Without it a worker is queue-only and links no HTTP server.
    public static func endpointServer() -> WorkerFeature {
        // Made on first use, in an HTTP mode: a queue worker never builds a registry.
        let metrics = LazyPrometheusMetrics()
        return WorkerFeature(
            name: "endpoint server", flags: EndpointServerSettings.flags, configure: EndpointServerSettings.configure,
            metricsFactory: { mode in
                guard mode.settings(as: ServerConfiguration.self) != nil else { return nil }
                return metrics.get().factory
            },
            serve: { mode, context in
                guard let configuration = mode.settings(as: ServerConfiguration.self) else { return nil }
                return EndpointServerService(
                    server: try EndpointServer(context: context, configuration: configuration, metrics: metrics.get()))
            })
    }
}

/// One registry per feature, made when first asked for.
private final class LazyPrometheusMetrics: Sendable {
    private let metrics = Mutex<PrometheusMetrics?>(nil)

    func get() -> PrometheusMetrics {
        metrics.withLock { metrics in
            if let existing = metrics { return existing }
            let made = PrometheusMetrics()
            metrics = made
            return made
        }
    }
}

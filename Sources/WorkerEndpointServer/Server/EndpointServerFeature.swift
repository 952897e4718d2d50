import WorkerRuntime

extension WorkerFeature {
    /// RunPod's endpoint API over HTTP, for `--local` and load-balancing endpoints (`PORT`):
    /// `/run`, `/runsync`, `/status`, `/stream`, `/cancel`, `/retry`, `/purge-queue`, `/health`,
    /// the health check (`/ping`), Prometheus `/metrics` and the OpenAI routes, under `/` and
    /// `/v2/{endpoint id}/`. Without it a worker is queue-only and links no HTTP server.
    public static func endpointServer() -> WorkerFeature {
        let metrics = PrometheusMetrics()
        return WorkerFeature(
            name: "endpoint server", metricsFactory: metrics.factory,
            serve: { mode, context in
                guard case .server(let configuration) = mode else { return nil }
                return EndpointServerService(server: EndpointServer(context: context, configuration: configuration, metrics: metrics))
            })
    }
}

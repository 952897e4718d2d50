import CoreMetrics
import Prometheus

/// The endpoint server's own Prometheus registry: the runtime records into it through
/// swift-metrics, `/metrics` renders it. One per server, so servers (and tests) never share state.
struct PrometheusMetrics: Sendable {
    let registry = PrometheusCollectorRegistry()

    var factory: any MetricsFactory {
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.defaultDurationHistogramBuckets = [
            .milliseconds(1), .milliseconds(5), .milliseconds(10), .milliseconds(50), .milliseconds(100),
            .milliseconds(500), .seconds(1), .seconds(5), .seconds(10), .seconds(60), .seconds(300),
        ]
        return factory
    }

    /// The Prometheus text exposition.
    func render() -> [UInt8] { registry.emitToBuffer() }
}

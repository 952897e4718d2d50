import CoreMetrics

import Prometheus

/// The worker's metrics, on its own Prometheus registry (so each server, and each test, has its own).
final class WorkerMetrics: Sendable {
    let registry: PrometheusCollectorRegistry
    private let factory: PrometheusMetricsFactory
    private let queueDepth: CoreMetrics.Gauge
    private let inProgress: CoreMetrics.Gauge
    private let duration: CoreMetrics.Timer

    init() {
        registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.defaultDurationHistogramBuckets = [
            .milliseconds(1), .milliseconds(5), .milliseconds(10), .milliseconds(50), .milliseconds(100),
            .milliseconds(500), .seconds(1), .seconds(5), .seconds(10), .seconds(60), .seconds(300),
        ]
        self.factory = factory
        queueDepth = CoreMetrics.Gauge(label: "worker_queue_depth", factory: factory)
        inProgress = CoreMetrics.Gauge(label: "worker_jobs_in_progress", factory: factory)
        duration = CoreMetrics.Timer(label: "worker_job_duration_seconds", factory: factory)
        queueDepth.record(0)
        inProgress.record(0)
    }

    func update(queued: Int, running: Int) {
        queueDepth.record(queued)
        inProgress.record(running)
    }

    func finished(_ job: LocalJob) {
        CoreMetrics.Counter(label: "worker_jobs_total", dimensions: [("status", job.status.rawValue)], factory: factory).increment()
        if let started = job.startedAt, let finished = job.finishedAt {
            duration.recordInterval(since: started, end: finished)
        }
    }

    func passthrough(route: String, status: Int) {
        Counter(
            label: "worker_passthrough_requests_total", dimensions: [("route", route), ("status", "\(status)")],
            factory: factory
        ).increment()
    }

    /// The Prometheus text exposition.
    func render() -> [UInt8] { registry.emitToBuffer() }
}

extension CoreMetrics.Timer {
    fileprivate func recordInterval(since start: ContinuousClock.Instant, end: ContinuousClock.Instant) {
        let (seconds, attoseconds) = (end - start).components
        recordNanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }
}

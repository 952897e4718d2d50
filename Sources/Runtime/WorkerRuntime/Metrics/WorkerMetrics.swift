import CoreMetrics
import Synchronization

/// The worker's metrics, recorded through swift-metrics in every mode: the job runner counts jobs
/// by final status, times them and tracks how many run; the endpoint server adds its queue depth
/// and passthrough requests. Instruments come from an explicit factory (the endpoint server's
/// Prometheus registry, or the process-wide `MetricsSystem`), so tests never share global state.
package final class WorkerMetrics: Sendable {
    private let factory: any MetricsFactory
    private let inProgress: Meter
    private let queueDepth: Gauge
    private let duration: Timer
    /// `worker_jobs_total` by status, made once each: making an instrument costs a registry
    /// lookup (and label validation) that the job path should not pay every time.
    private let completed: Counter
    private let failed: Counter
    private let otherTotals = Mutex<[String: Counter]>([:])

    package init(factory: any MetricsFactory) {
        self.factory = factory
        inProgress = Meter(label: "worker_jobs_in_progress", factory: factory)
        queueDepth = Gauge(label: "worker_queue_depth", factory: factory)
        duration = Timer(label: "worker_job_duration_seconds", factory: factory)
        completed = Counter(label: "worker_jobs_total", dimensions: [("status", "COMPLETED")], factory: factory)
        failed = Counter(label: "worker_jobs_total", dimensions: [("status", "FAILED")], factory: factory)
        inProgress.set(0)
        queueDepth.record(0)
    }

    /// A counter from the same factory as the job metrics, for features (the response cache).
    package func counter(_ label: String, dimensions: [(String, String)] = []) -> Counter {
        Counter(label: label, dimensions: dimensions, factory: factory)
    }

    /// A timer (a histogram in Prometheus) from the same factory.
    package func timer(_ label: String, dimensions: [(String, String)] = []) -> Timer {
        Timer(label: label, dimensions: dimensions, factory: factory)
    }

    /// A gauge from the same factory.
    package func gauge(_ label: String, dimensions: [(String, String)] = []) -> Gauge {
        Gauge(label: label, dimensions: dimensions, factory: factory)
    }

    func jobStarted() {
        inProgress.increment()
    }

    /// A job ended: `status` is the endpoint API's (COMPLETED, FAILED, CANCELLED, TIMED_OUT).
    func jobFinished(status: String, duration elapsed: Duration) {
        inProgress.decrement()
        total(status).increment()
        duration.recordNanoseconds(elapsed.nanoseconds)
    }

    /// A running job was stopped (cancelled, timed out): whoever stopped it counts its status.
    func jobAbandoned() {
        inProgress.decrement()
    }

    /// A job ended without a result of its own: cancelled or timed out, running or queued.
    package func jobStopped(status: String) {
        total(status).increment()
    }

    private func total(_ status: String) -> Counter {
        if status == "COMPLETED" { return completed }
        if status == "FAILED" { return failed }
        return otherTotals.withLock { totals in
            if let counter = totals[status] { return counter }
            let counter = Counter(label: "worker_jobs_total", dimensions: [("status", status)], factory: factory)
            totals[status] = counter
            return counter
        }
    }

    package func queued(_ count: Int) {
        queueDepth.record(count)
    }

    /// `route` must come from a fixed set (the caller maps unknown paths to one value): labels
    /// taken from client input would let a client grow the registry without bound.
    package func passthrough(route: String, status: Int) {
        Counter(
            label: "worker_passthrough_requests_total", dimensions: [("route", route), ("status", "\(status)")],
            factory: factory
        ).increment()
    }
}

import CoreMetrics
import GatewayCore
import Synchronization
import WorkerRuntime

/// Per upstream, on `/metrics`: calls by outcome, fallbacks, call time, breaker state and
/// openings. Instruments are made once per upstream and outcome (making one costs a registry
/// lookup), from the worker's own registry, which reaches the handler with its first job.
final class GatewayMetrics: Sendable {
    private struct Instruments {
        var calls: [String: Counter] = [:]
        var fallbacks: [String: Counter] = [:]
        var durations: [String: Timer] = [:]
        var states: [String: Gauge] = [:]
        var openings: [String: Counter] = [:]
    }

    private let instruments = Mutex(Instruments())

    /// A call to `upstream` ended with `outcome` after `elapsed`.
    func call(_ upstream: String, _ outcome: UpstreamOutcome, elapsed: Duration, metrics: WorkerMetrics?) {
        guard let metrics else { return }
        let kind = Self.kind(outcome)
        let (counter, timer) = instruments.withLock { all -> (Counter, Timer) in
            let key = upstream + "\u{0}" + kind
            let counter = all.calls[key] ?? metrics.counter("gateway_upstream_calls_total", dimensions: [("upstream", upstream), ("outcome", kind)])
            all.calls[key] = counter
            let timer = all.durations[upstream] ?? metrics.timer("gateway_upstream_call_seconds", dimensions: [("upstream", upstream)])
            all.durations[upstream] = timer
            return (counter, timer)
        }
        counter.increment()
        timer.recordNanoseconds(elapsed.nanoseconds)
    }

    /// A job left `upstream` for another (it never accepted the job, or timed it out).
    func fallback(from upstream: String, metrics: WorkerMetrics?) {
        guard let metrics else { return }
        instruments.withLock { all in
            let counter = all.fallbacks[upstream] ?? metrics.counter("gateway_fallbacks_total", dimensions: [("upstream", upstream)])
            all.fallbacks[upstream] = counter
            return counter
        }.increment()
    }

    /// `upstream`'s breaker now: 0 closed, 1 half-open, 2 open; `opened` when it just opened.
    func breaker(_ upstream: String, _ state: CircuitBreaker.State, opened: Bool, metrics: WorkerMetrics?) {
        guard let metrics else { return }
        let (gauge, openings) = instruments.withLock { all -> (Gauge, Counter) in
            let gauge = all.states[upstream] ?? metrics.gauge("gateway_breaker_state", dimensions: [("upstream", upstream)])
            all.states[upstream] = gauge
            let openings = all.openings[upstream] ?? metrics.counter("gateway_breaker_openings_total", dimensions: [("upstream", upstream)])
            all.openings[upstream] = openings
            return (gauge, openings)
        }
        switch state {
        case .closed: gauge.record(0)
        case .halfOpen: gauge.record(1)
        case .open: gauge.record(2)
        }
        if opened { openings.increment() }
    }

    static func kind(_ outcome: UpstreamOutcome) -> String {
        switch outcome {
        case .completed: "completed"
        case .failed: "failed"
        case .retriable: "not_accepted"
        case .refused: "refused"
        case .lost: "lost"
        case .outOfTime: "out_of_time"
        }
    }
}

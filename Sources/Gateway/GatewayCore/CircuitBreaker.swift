/// One upstream's circuit breaker, as a pure state machine over times it is given (the gateway
/// keeps one per upstream, also when a tier has a single one: every call to a dead upstream
/// otherwise pays its timeout).
///
/// - closed: calls go through; it opens after `consecutiveFailures` in a row, or when at least
///   `minimumCalls` in the last `window` failed at more than `errorRate`;
/// - open: no calls until `cooldown` has passed;
/// - half-open: one trial at a time, a call or an active probe; its success closes the breaker,
///   its failure opens it for another cooldown.
package struct CircuitBreaker: Sendable, Equatable {
    package enum State: Sendable, Equatable {
        case closed
        case open(until: ContinuousClock.Instant)
        case halfOpen(trialUnderWay: Bool)
    }

    package let settings: GatewayConfiguration.BreakerSettings
    package private(set) var state = State.closed
    private var consecutive = 0
    /// Calls and failures per second of the window, oldest first, with the second each began.
    private var buckets: [(second: Int64, calls: Int, failures: Int)] = []
    /// Times it opened (for metrics and tests).
    package private(set) var openings = 0

    package init(settings: GatewayConfiguration.BreakerSettings) {
        self.settings = settings
    }

    package static func == (a: Self, b: Self) -> Bool { a.state == b.state && a.openings == b.openings }

    /// Whether a call may go now; in half-open, taking the one trial.
    package mutating func admit(now: ContinuousClock.Instant) -> Bool {
        switch state {
        case .closed:
            return true
        case .open(let until):
            guard now >= until else { return false }
            state = .halfOpen(trialUnderWay: true)
            return true
        case .halfOpen(let underWay):
            guard !underWay else { return false }
            state = .halfOpen(trialUnderWay: true)
            return true
        }
    }

    /// Whether calls would be admitted now, without taking a trial (for choosing among upstreams).
    package func isAvailable(now: ContinuousClock.Instant) -> Bool {
        switch state {
        case .closed: return true
        case .open(let until): return now >= until
        case .halfOpen(let underWay): return !underWay
        }
    }

    /// The outcome of an admitted call.
    package mutating func record(success: Bool, now: ContinuousClock.Instant) {
        count(success: success, now: now)
        switch state {
        case .halfOpen:
            if success { close() } else { open(now: now) }
        case .open:
            // A call admitted before it opened: its outcome changes nothing now.
            break
        case .closed:
            consecutive = success ? 0 : consecutive + 1
            if !success, consecutive >= settings.consecutiveFailures || rateExceeded(now: now) { open(now: now) }
        }
    }

    /// An active health probe's outcome: closes a breaker past its cooldown, opens a closed one
    /// only through the same rules as calls (one bad probe is not an outage).
    package mutating func probe(success: Bool, now: ContinuousClock.Instant) {
        switch state {
        case .open(let until):
            if now >= until { if success { close() } else { open(now: now) } }
        case .halfOpen:
            if success { close() }
        case .closed:
            if !success {
                consecutive += 1
                if consecutive >= settings.consecutiveFailures { open(now: now) }
            }
        }
    }

    private mutating func open(now: ContinuousClock.Instant) {
        state = .open(until: now + settings.cooldown)
        openings += 1
        consecutive = 0
        buckets.removeAll()
    }

    private mutating func close() {
        state = .closed
        consecutive = 0
        buckets.removeAll()
    }

    private mutating func count(success: Bool, now: ContinuousClock.Instant) {
        let second = Self.second(now)
        if let last = buckets.last, last.second == second {
            buckets[buckets.count - 1].calls += 1
            if !success { buckets[buckets.count - 1].failures += 1 }
        } else {
            buckets.append((second, 1, success ? 0 : 1))
        }
        let oldest = second - max(1, settings.window.components.seconds) + 1
        if let first = buckets.first, first.second < oldest { buckets.removeAll { $0.second < oldest } }
    }

    private func rateExceeded(now: ContinuousClock.Instant) -> Bool {
        let calls = buckets.reduce(0) { $0 + $1.calls }
        let failures = buckets.reduce(0) { $0 + $1.failures }
        return calls >= settings.minimumCalls && Double(failures) > settings.errorRate * Double(calls)
    }

    private static func second(_ instant: ContinuousClock.Instant) -> Int64 {
        let origin = reference
        return (instant - origin).components.seconds
    }

    /// Any fixed instant: buckets are whole seconds after it.
    private static let reference = ContinuousClock.now
}

/// Whether calls go to Redis or are skipped, as a value: after a failure Redis is skipped until an
/// instant, then one probe (off the request path) decides; calls meanwhile are skipped too, so a
/// stalled server costs one timeout per outage, not one per call. The rate limits and the
/// response cache each keep one.
struct RedisOutage {
    enum Route: Equatable { case redis, local, localAndProbe }

    private(set) var skipUntil: ContinuousClock.Instant?
    private var probing = false

    /// Where a request counts now; the first request after the pause also starts the probe.
    mutating func route(now: ContinuousClock.Instant) -> Route {
        guard let until = skipUntil else { return .redis }
        guard until <= now, !probing else { return .local }
        probing = true
        return .localAndProbe
    }

    /// Records a failure; true when it starts an outage (the one to log loudly).
    mutating func failed(until: ContinuousClock.Instant) -> Bool {
        defer {
            skipUntil = until
            probing = false
        }
        return skipUntil == nil
    }

    mutating func probeEnded(until: ContinuousClock.Instant) {
        skipUntil = until
        probing = false
    }

    mutating func recovered() {
        skipUntil = nil
        probing = false
    }
}

/// Exponential backoff with full jitter, capped: a failing platform is not hammered, and many
/// workers recovering at once do not retry in lockstep.
struct Backoff: Sendable {
    let base: Duration
    let cap: Duration
    private(set) var failures = 0

    init(base: Duration, cap: Duration) {
        self.base = base
        self.cap = cap
    }

    mutating func reset() { failures = 0 }

    /// The wait before the next attempt after one more failure.
    mutating func next<G: RandomNumberGenerator>(using generator: inout G) -> Duration {
        failures += 1
        let ceiling = min(cap, base * (1 << min(failures - 1, 30)))
        // At least half the ceiling, so a streak of unlucky draws cannot become a busy loop.
        let fraction = Double.random(in: 0.5...1.0, using: &generator)
        return ceiling * fraction
    }

    mutating func next() -> Duration {
        var generator = SystemRandomNumberGenerator()
        return next(using: &generator)
    }
}

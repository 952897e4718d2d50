/// Chooses an upstream within a tier: weighted, health-aware, least outstanding work by the
/// power of two choices. Two candidates are drawn at random in proportion to their weights, and
/// the one with less work per weight wins. Work is (queued + in flight) / (workers + 1), from the
/// last health probe plus this gateway's own calls. Upstreams whose breaker admits nothing, or
/// that are full (`max_in_flight`), are skipped; a cold one (no ready worker) only when no warm
/// one is left.
package struct UpstreamPicker: Sendable {
    package struct Candidate: Sendable, Equatable {
        package var index: Int
        package var weight: Double
        /// Jobs waiting at the upstream, by its last health report.
        package var queued: Int
        /// Calls this gateway has under way to it.
        package var inFlight: Int
        package var maxInFlight: Int
        /// Ready workers (idle + running), by its last health report; nil when unknown.
        package var workers: Int?
        package var available: Bool

        package init(index: Int, weight: Double, queued: Int = 0, inFlight: Int = 0, maxInFlight: Int = .max, workers: Int? = nil, available: Bool = true) {
            self.index = index
            self.weight = weight
            self.queued = queued
            self.inFlight = inFlight
            self.maxInFlight = maxInFlight
            self.workers = workers
            self.available = available
        }

        /// In floating point: counts from an upstream's report may be huge.
        package var load: Double { (Double(queued) + Double(inFlight)) / (Double(workers ?? 0) + 1) / weight }
        var isCold: Bool { workers == 0 }
    }

    package init() {}

    /// The index of the upstream to call, or nil when none can take a call. `random` returns
    /// numbers in 0..<1 (tests pass a fixed sequence).
    package func pick(_ candidates: [Candidate], random: () -> Double = { Double.random(in: 0..<1) }) -> Int? {
        let usable = candidates.filter { $0.available && $0.inFlight < $0.maxInFlight }
        let warm = usable.filter { !$0.isCold }
        let pool = warm.isEmpty ? usable : warm
        guard let first = draw(pool, random: random) else { return nil }
        guard pool.count > 1 else { return first.index }
        var second = first
        // Another than the first, drawn the same way (a few tries, then the first other).
        for _ in 0..<4 where second.index == first.index { second = draw(pool, random: random) ?? first }
        if second.index == first.index { second = pool.first { $0.index != first.index } ?? first }
        return second.load < first.load ? second.index : first.index
    }

    private func draw(_ pool: [Candidate], random: () -> Double) -> Candidate? {
        let total = pool.reduce(0) { $0 + $1.weight }
        guard total > 0 else { return pool.first }
        var point = random() * total
        for candidate in pool {
            point -= candidate.weight
            if point < 0 { return candidate }
        }
        return pool.last
    }
}

import GatewayCore
import Synchronization
import WorkerJSON

/// Every upstream's live state, shared by the jobs and the health probes: breaker, calls under
/// way, last health report, a pause after a 429; and the gateway's retry budget. The decisions
/// themselves are `GatewayCore`'s pure types; this holds them under one lock.
final class UpstreamPool: Sendable {
    struct Health: Sendable, Equatable {
        var queued: Int
        /// Ready workers (idle + running); nil when the upstream does not say.
        var workers: Int?
    }

    private struct Entry {
        var breaker: CircuitBreaker
        var inFlight = 0
        var health: Health?
        var pausedUntil: ContinuousClock.Instant?
    }

    private struct State {
        var entries: [Entry]
        var budget: RetryBudget
    }

    let upstreams: [GatewayConfiguration.Upstream]
    private let state: Mutex<State>
    private let picker = UpstreamPicker()

    init(configuration: GatewayConfiguration) {
        upstreams = configuration.upstreams
        state = Mutex(
            State(
                entries: configuration.upstreams.map { _ in Entry(breaker: CircuitBreaker(settings: configuration.breaker)) },
                budget: RetryBudget(ratio: configuration.retryBudget)))
    }

    /// The upstream of `tier` to call next (endpoint-API ones not in `excluded`), nil when none can take a call.
    func choose(tier: String, excluding excluded: Set<Int>, now: ContinuousClock.Instant = .now) -> Int? {
        choose(among: upstreams.indices.filter { upstreams[$0].tier == tier && upstreams[$0].url != nil }, excluding: excluded, now: now)
    }

    /// The upstream of `indices` to call next, nil when none can take a call.
    func choose(among indices: [Int], excluding excluded: Set<Int>, now: ContinuousClock.Instant = .now) -> Int? {
        let candidates = state.withLock { state in
            indices.compactMap { index -> UpstreamPicker.Candidate? in
                let upstream = upstreams[index]
                guard !excluded.contains(index) else { return nil }
                let entry = state.entries[index]
                let paused = entry.pausedUntil.map { now < $0 } ?? false
                return UpstreamPicker.Candidate(
                    index: index, weight: upstream.weight, queued: entry.health?.queued ?? 0, inFlight: entry.inFlight,
                    maxInFlight: upstream.maxInFlight, workers: entry.health?.workers, available: !paused && entry.breaker.isAvailable(now: now))
            }
        }
        return picker.pick(candidates)
    }

    enum Admission: Equatable {
        case admitted
        /// Its breaker took no call after all (another job took its half-open trial).
        case refusedByBreaker
        /// A fallback, and the retry budget is spent.
        case budgetSpent
    }

    /// Starts a call to `index`: a first call adds to the retry budget, a fallback spends from it.
    func begin(_ index: Int, fallback: Bool, now: ContinuousClock.Instant = .now) -> Admission {
        state.withLock { state in
            if fallback {
                guard state.budget.withdraw(now: now) else { return .budgetSpent }
            } else {
                state.budget.deposit()
            }
            guard state.entries[index].breaker.admit(now: now) else { return .refusedByBreaker }
            state.entries[index].inFlight += 1
            return .admitted
        }
    }

    /// Ends a call begun with `begin`; answers the breaker's state after it, and whether this
    /// call opened it.
    @discardableResult
    func end(_ index: Int, _ outcome: UpstreamOutcome, pause: Duration? = nil, now: ContinuousClock.Instant = .now) -> (CircuitBreaker.State, opened: Bool) {
        state.withLock { state in
            state.entries[index].inFlight -= 1
            let openings = state.entries[index].breaker.openings
            if let worked = outcome.upstreamWorked { state.entries[index].breaker.record(success: worked, now: now) }
            if let pause { state.entries[index].pausedUntil = now + pause }
            return (state.entries[index].breaker.state, state.entries[index].breaker.openings > openings)
        }
    }

    /// A health probe's answer (nil: it failed).
    func probed(_ index: Int, _ health: Health?, now: ContinuousClock.Instant = .now) {
        state.withLock { state in
            if let health { state.entries[index].health = health }
            state.entries[index].breaker.probe(success: health != nil, now: now)
        }
    }

    /// The breaker of `index`, for tests and metrics.
    func breaker(_ index: Int) -> CircuitBreaker { state.withLock { $0.entries[index].breaker } }

    /// Reads RunPod's health shape: `{"jobs": {"inQueue"}, "workers": {"idle", "running", …}}`.
    static func health(from json: JSONValue) -> Health? {
        guard let jobs = json["jobs"]?.objectValue else { return nil }
        let queued = jobs["inQueue"]?.intValue ?? 0
        let workers = json["workers"]?.objectValue.map { ($0["idle"]?.intValue ?? 0) + ($0["running"]?.intValue ?? 0) }
        return Health(queued: max(0, queued), workers: workers.map { max(0, $0) })
    }
}

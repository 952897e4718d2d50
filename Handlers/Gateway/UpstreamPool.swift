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
        /// Open by another replica's breaker (`SharedBoard`), until then.
        var sharedOpenUntil: ContinuousClock.Instant?
    }

    private struct State {
        var entries: [Entry]
        var budget: RetryBudget
    }

    let upstreams: [GatewayConfiguration.Upstream]
    private let state: Mutex<State>
    private let picker = UpstreamPicker()
    /// Where breaker openings and closings are shared with other replicas (`REDIS_URL`).
    let board: (any SharedBoard)?
    let cooldown: Duration

    init(configuration: GatewayConfiguration, board: (any SharedBoard)? = nil) {
        self.board = board
        cooldown = configuration.breaker.cooldown
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
                let paused = entry.pausedUntil.map { now < $0 } ?? false || entry.sharedOpenUntil.map { now < $0 } ?? false
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
        /// `max_in_flight` calls are under way to it already.
        case full
    }

    /// Starts a call to `index`: a first call adds to the retry budget, a fallback spends from it.
    func begin(_ index: Int, fallback: Bool, now: ContinuousClock.Instant = .now) -> Admission {
        state.withLock { state in
            guard state.entries[index].inFlight < upstreams[index].maxInFlight else { return .full }
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
        let (after, opened, closed) = state.withLock { state in
            state.entries[index].inFlight -= 1
            let before = state.entries[index].breaker
            if let worked = outcome.upstreamWorked { state.entries[index].breaker.record(success: worked, now: now) }
            if let pause { state.entries[index].pausedUntil = now + pause }
            let after = state.entries[index].breaker
            return (after.state, after.openings > before.openings, before.state != .closed && after.state == .closed)
        }
        share(index, opened: opened, closed: closed)
        return (after, opened)
    }

    /// Tells the other replicas of an opening or a closing (in the background: a slow Redis must
    /// not slow the job that saw it).
    private func share(_ index: Int, opened: Bool, closed: Bool) {
        guard let board, opened || closed else { return }
        let name = upstreams[index].name
        let cooldown = cooldown
        Task {
            if opened { try? await board.opened(name, cooldown: cooldown) }
            if closed { try? await board.closed(name) }
        }
    }

    /// A health probe's answer (nil: it failed).
    func probed(_ index: Int, _ health: Health?, now: ContinuousClock.Instant = .now) {
        let (opened, closed) = state.withLock { state in
            if let health { state.entries[index].health = health }
            let before = state.entries[index].breaker
            state.entries[index].breaker.probe(success: health != nil, now: now)
            let after = state.entries[index].breaker
            return (after.openings > before.openings, before.state != .closed && after.state == .closed)
        }
        share(index, opened: opened, closed: closed)
    }

    /// The shared board's view, per upstream: open elsewhere for how long, and the health another
    /// replica probed (kept when nil: this replica may have probed it itself).
    func shared(_ views: [(open: Duration?, health: Health?)], now: ContinuousClock.Instant = .now) {
        state.withLock { state in
            for (index, view) in views.enumerated() where index < state.entries.count {
                state.entries[index].sharedOpenUntil = view.open.map { now + $0 }
                if let health = view.health { state.entries[index].health = health }
            }
        }
    }

    /// The breaker of `index`, for tests and metrics.
    func breaker(_ index: Int) -> CircuitBreaker { state.withLock { $0.entries[index].breaker } }

    /// Reads RunPod's health shape: `{"jobs": {"inQueue"}, "workers": {"idle", "running", …}}`.
    static func health(from json: JSONValue) -> Health? {
        guard let jobs = json["jobs"]?.objectValue else { return nil }
        // Counts an upstream reports are clamped: a lying or broken /health (Int.max, negatives)
        // must not overflow the arithmetic of the choice.
        func count(_ value: JSONValue?) -> Int { min(max(0, value?.intValue ?? 0), 1_000_000) }
        let queued = count(jobs["inQueue"])
        let workers = json["workers"]?.objectValue.map { count($0["idle"]) + count($0["running"]) }
        return Health(queued: queued, workers: workers)
    }
}

import Synchronization

/// `/run`'s `Idempotency-Key` in one process: the job made for a key, until the run retention
/// passes. Bounded: past `limit` keys the oldest go first (a client cycling keys cannot grow it).
final class IdempotencyKeys: Sendable {
    private struct State {
        var ids: [String: (id: String, until: ContinuousClock.Instant)] = [:]
        var order = FIFO<String>()
    }

    private let state = Mutex(State())
    let limit: Int

    init(limit: Int = 100_000) {
        self.limit = limit
    }

    func id(for key: String, now: ContinuousClock.Instant) -> String? {
        state.withLock { state in
            guard let known = state.ids[key] else { return nil }
            guard known.until > now else {
                state.ids[key] = nil
                return nil
            }
            return known.id
        }
    }

    func remember(_ key: String, id: String, until: ContinuousClock.Instant) {
        state.withLock { state in
            if state.ids.updateValue((id, until), forKey: key) == nil { state.order.append(key) }
            while state.ids.count > limit, !state.order.isEmpty { state.ids[state.order.removeFirst()] = nil }
        }
    }
}

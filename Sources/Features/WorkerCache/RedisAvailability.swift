import RedisClient
import Synchronization

/// Whether Redis is being skipped, shared by everything of this process that uses one client (the
/// rate limits, the response cache, a handler's start-up check): an outage found by one is skipped
/// by all, so a request pays at most one timeout per outage, not one per use of Redis. After a
/// failure Redis is skipped for a pause (the user's); then one probe (off the request path) decides.
package final class RedisAvailability: Sendable {
    private let state = Mutex(RedisOutage())

    /// The one for `redis`, made on first use.
    package static func shared(for redis: RedisClient) -> RedisAvailability {
        registry.withLock { entries in
            entries.removeAll { $0.client == nil }
            if let found = entries.first(where: { $0.client === redis })?.availability { return found }
            let made = RedisAvailability()
            entries.append(Entry(client: redis, availability: made))
            return made
        }
    }

    private struct Entry {
        weak var client: RedisClient?
        let availability: RedisAvailability
    }

    private static let registry = Mutex<[Entry]>([])

    package var isSkipping: Bool { state.withLock { $0.skipUntil != nil } }

    func route() -> RedisOutage.Route { state.withLock { $0.route(now: .now) } }

    /// Records a failure; true when it starts an outage (the one to log loudly).
    @discardableResult
    package func failed(pause: Duration = .seconds(5)) -> Bool {
        let until = ContinuousClock.now + pause
        return state.withLock { $0.failed(until: until) }
    }

    func probeEnded(pause: Duration) {
        let until = ContinuousClock.now + pause
        state.withLock { $0.probeEnded(until: until) }
    }

    package func recovered() { state.withLock { $0.recovered() } }
}

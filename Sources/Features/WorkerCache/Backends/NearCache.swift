import Synchronization
import WorkerJSON

/// Answers kept in this process, as values (a hit costs no parsing), bounded in bytes of their
/// JSON (`CACHE_MAX_BYTES`): the whole cache without Redis, and in front of it with Redis, where
/// each entry expires when Redis's copy does.
package final class NearCache: Sendable {
    private let table: Mutex<LRUTable<JSONValue>>
    private let now: @Sendable () -> ContinuousClock.Instant

    package init(maxBytes: Int, now: @escaping @Sendable () -> ContinuousClock.Instant = { .now }) {
        self.table = Mutex(LRUTable(capacity: maxBytes))
        self.now = now
    }

    package func get(_ key: String) -> JSONValue? {
        let now = now()
        return table.withLock { $0.get(key, now: now) }
    }

    /// Keeps `value` (`size` bytes of JSON) for `ttl`.
    package func set(_ key: String, _ value: JSONValue, size: Int, ttl: Duration) {
        let expires = now() + ttl
        table.withLock { $0.set(key, value, size: size, expires: expires) }
    }
}

import Synchronization

/// Answers cached in this process, bounded in bytes (`CACHE_MAX_BYTES`): lost on restart and
/// not shared between workers; the choice when no `REDIS_URL` is set.
package final class MemoryCacheBackend: ResponseCacheBackend {
    private let table: Mutex<LRUTable>
    private let now: @Sendable () -> ContinuousClock.Instant

    package init(maxBytes: Int, now: @escaping @Sendable () -> ContinuousClock.Instant = { .now }) {
        self.table = Mutex(LRUTable(capacity: maxBytes))
        self.now = now
    }

    package var name: String { "in-process" }

    package func get(_ key: String) async throws -> [UInt8]? {
        let now = now()
        return table.withLock { $0.get(key, now: now) }
    }

    package func set(_ key: String, _ value: [UInt8], ttl: Duration) async throws {
        let expires = now() + ttl
        table.withLock { $0.set(key, value, expires: expires) }
    }
}

import Synchronization

/// Where request counts live: in the process (`InProcessRateLimitStore`) or shared by every
/// worker on one Redis (the cache module's store). A feature brings a store as a contribution;
/// the endpoint server uses the first one it finds, else its own in-process one.
package protocol RateLimitStore: Sendable {
    /// For logs.
    var name: String { get }
    /// Counts one request under `key` in its current window (made `window` long at its first
    /// request); returns the count so far and the time until the window ends.
    func hit(_ key: String, window: Duration) async throws -> RateLimitCount
}

package struct RateLimitCount: Sendable, Equatable {
    package var count: Int
    package var resetIn: Duration

    package init(count: Int, resetIn: Duration) {
        self.count = count
        self.resetIn = resetIn
    }
}

/// Fixed windows per key, as a pure value: what `InProcessRateLimitStore` keeps under its lock.
/// Bounded: past `maxKeys`, ended windows are dropped, and if all are live the table starts over
/// (letting some clients through early rather than growing without end).
package struct FixedWindowCounter {
    private var windows: [String: (count: Int, ends: ContinuousClock.Instant)] = [:]
    package let maxKeys: Int

    package init(maxKeys: Int = 100_000) {
        self.maxKeys = maxKeys
    }

    package var keys: Int { windows.count }

    package mutating func hit(_ key: String, window: Duration, now: ContinuousClock.Instant) -> RateLimitCount {
        if var entry = windows[key], entry.ends > now {
            entry.count += 1
            windows[key] = entry
            return RateLimitCount(count: entry.count, resetIn: entry.ends - now)
        }
        if windows.count >= maxKeys {
            windows = windows.filter { $0.value.ends > now }
            if windows.count >= maxKeys { windows = [:] }
        }
        windows[key] = (1, now + window)
        return RateLimitCount(count: 1, resetIn: window)
    }
}

/// Counts in this process only: each worker process has its own budget.
package final class InProcessRateLimitStore: RateLimitStore {
    private let counter: Mutex<FixedWindowCounter>
    private let now: @Sendable () -> ContinuousClock.Instant

    package init(maxKeys: Int = 100_000, now: @escaping @Sendable () -> ContinuousClock.Instant = { .now }) {
        self.counter = Mutex(FixedWindowCounter(maxKeys: maxKeys))
        self.now = now
    }

    package var name: String { "in-process" }

    package func hit(_ key: String, window: Duration) async throws -> RateLimitCount {
        let now = now()
        return counter.withLock { $0.hit(key, window: window, now: now) }
    }
}

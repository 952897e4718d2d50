#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import Synchronization

/// Gives the heap's free pages back to the system after large inputs were let go. glibc keeps
/// freed memory in its arenas (a worker's threads each have one): after a bulk load of 20 MB
/// requests, 200 MB stayed resident with nothing in it, until `malloc_trim`. Trimming walks the
/// arenas under their locks, so it runs off the job path, on a queue of its own, at most once per
/// `interval`, and only once `threshold` bytes were released since the last trim.
package final class HeapTrim: Sendable {
    package static let shared = HeapTrim()

    private struct State {
        var released = 0
        var scheduled = false
        var last: ContinuousClock.Instant?
    }

    package typealias Schedule = @Sendable (Duration, @escaping @Sendable () -> Void) -> Void

    private let state = Mutex(State())
    package let threshold: Int
    package let interval: Duration
    private let now: @Sendable () -> ContinuousClock.Instant
    private let schedule: Schedule
    private let trim: @Sendable () -> Void

    /// `now`, `schedule` and `trim` are the clock, the delayed run and the trim itself (tests
    /// pass their own).
    package init(
        threshold: Int = 16 << 20, interval: Duration = .seconds(1), now: @escaping @Sendable () -> ContinuousClock.Instant = { .now },
        schedule: Schedule? = nil, trim: @escaping @Sendable () -> Void = HeapTrim.systemTrim
    ) {
        self.threshold = threshold
        self.interval = interval
        self.now = now
        self.schedule = schedule ?? HeapTrim.onQueue(DispatchQueue(label: "heap-trim", qos: .utility))
        self.trim = trim
    }

    /// `bytes` of inputs (as received) were let go.
    package func released(_ bytes: Int) {
        let now = now()
        let delay = state.withLock { state -> Duration? in
            state.released += bytes
            guard state.released >= threshold, !state.scheduled else { return nil }
            state.scheduled = true
            guard let last = state.last, now - last < interval else { return .zero }
            return interval - (now - last)
        }
        guard let delay else { return }
        schedule(delay) { [self] in
            let now = self.now()
            state.withLock { state in
                state.released = 0
                state.scheduled = false
                state.last = now
            }
            trim()
        }
    }

    private static func onQueue(_ queue: DispatchQueue) -> Schedule {
        { delay, action in
            let (seconds, attoseconds) = delay.components
            queue.asyncAfter(deadline: .now() + .nanoseconds(Int(seconds) * 1_000_000_000 + Int(attoseconds / 1_000_000_000)), execute: action)
        }
    }

    /// glibc's `malloc_trim(0)`, looked up at run time: <malloc.h> is not in the Glibc module,
    /// and another C library has no such call (nothing is done then).
    package static let systemTrim: @Sendable () -> Void = {
        #if canImport(Glibc)
        guard let symbol = mallocTrim else { return }
        _ = unsafeBitCast(symbol, to: (@convention(c) (Int) -> Int32).self)(0)
        #endif
    }

    #if canImport(Glibc)
    private nonisolated(unsafe) static let mallocTrim = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "malloc_trim")
    #endif
}

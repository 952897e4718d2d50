#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import Synchronization

/// Gives the heap's free pages back to the system after large inputs were let go. glibc keeps
/// freed memory in its arenas (a worker's threads each have one): after a bulk load of 20 MB
/// requests, 200 MB stayed resident with nothing in it, until `malloc_trim`. Trimming walks the
/// arenas under their locks, so it runs off the job path, on a queue of its own, at most once a
/// second, and only once `threshold` bytes were released since the last trim.
package final class HeapTrim: Sendable {
    package static let shared = HeapTrim()

    private struct State {
        var released = 0
        var scheduled = false
        var last: ContinuousClock.Instant?
    }

    private let state = Mutex(State())
    private let queue = DispatchQueue(label: "heap-trim", qos: .utility)
    package let threshold: Int
    package let interval: Duration
    private let trim: @Sendable () -> Void

    package init(threshold: Int = 16 << 20, interval: Duration = .seconds(1), trim: @escaping @Sendable () -> Void = HeapTrim.systemTrim) {
        self.threshold = threshold
        self.interval = interval
        self.trim = trim
    }

    /// `bytes` of inputs (as received) were let go.
    package func released(_ bytes: Int) {
        let delay = state.withLock { state -> Duration? in
            state.released += bytes
            guard state.released >= threshold, !state.scheduled else { return nil }
            state.scheduled = true
            let now = ContinuousClock.now
            guard let last = state.last, now - last < interval else { return .zero }
            return interval - (now - last)
        }
        guard let delay else { return }
        queue.asyncAfter(deadline: .now() + .nanoseconds(Int(delay.components.seconds * 1_000_000_000 + delay.components.attoseconds / 1_000_000_000))) {
            [self] in
            state.withLock { state in
                state.released = 0
                state.scheduled = false
                state.last = .now
            }
            trim()
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

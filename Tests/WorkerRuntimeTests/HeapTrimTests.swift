import Synchronization
import Testing
import TestSupport

@testable import WorkerRuntime

@Suite("Heap trims after large inputs are let go", .defaultPass)
struct HeapTrimTests {
    /// A clock moved by hand and the runs scheduled on it, run when the test says.
    final class Scheduler: Sendable {
        let clock = Mutex(ContinuousClock.now)
        let pending = Mutex<[(delay: Duration, action: @Sendable () -> Void)]>([])
        func schedule(_ delay: Duration, _ action: @escaping @Sendable () -> Void) { pending.withLock { $0.append((delay, action)) } }
        /// Moves the clock by each pending run's delay and runs it.
        func runPending() -> [Duration] {
            let runs = pending.withLock { pending in defer { pending.removeAll() }; return pending }
            for run in runs {
                clock.withLock { $0 += run.delay }
                run.action()
            }
            return runs.map(\.delay)
        }
    }

    @Test("Nothing below the threshold; one trim for a burst past it, at once; the next no sooner than the interval after")
    func debounced() {
        let trims = Atomic<Int>(0)
        let scheduler = Scheduler()
        let heap = HeapTrim(
            threshold: 10, interval: .seconds(1), now: { scheduler.clock.withLock { $0 } }, schedule: scheduler.schedule,
            trim: { trims.add(1, ordering: .relaxed) })
        heap.released(4)
        heap.released(5)
        #expect(scheduler.runPending().isEmpty && trims.load(ordering: .relaxed) == 0)
        for _ in 0..<50 { heap.released(4) }
        #expect(scheduler.runPending() == [.zero], "a burst past the threshold makes one trim, at once")
        #expect(trims.load(ordering: .relaxed) == 1)
        scheduler.clock.withLock { $0 += .milliseconds(300) }
        for _ in 0..<50 { heap.released(4) }
        #expect(scheduler.runPending() == [.milliseconds(700)], "the next waits out the interval since the last")
        #expect(trims.load(ordering: .relaxed) == 2)
        scheduler.clock.withLock { $0 += .seconds(5) }
        heap.released(9)
        #expect(scheduler.runPending().isEmpty, "below the threshold since the last trim")
        heap.released(1)
        #expect(scheduler.runPending() == [.zero] && trims.load(ordering: .relaxed) == 3)
        // The real one runs (glibc's malloc_trim) without harm.
        HeapTrim.systemTrim()
    }
}

import Synchronization
import Testing
import TestSupport

@testable import WorkerRuntime

@Suite("Heap trims after large inputs are let go", .defaultPass)
struct HeapTrimTests {
    @Test("Nothing below the threshold; one trim for a burst past it; the next at most once per interval")
    func debounced() async throws {
        let trims = Atomic<Int>(0)
        let heap = HeapTrim(threshold: 10, interval: .milliseconds(300)) { trims.add(1, ordering: .relaxed) }
        heap.released(4)
        heap.released(5)
        try await Task.sleep(for: .milliseconds(100))
        #expect(trims.load(ordering: .relaxed) == 0)
        for _ in 0..<50 { heap.released(4) }
        try await Task.sleep(for: .milliseconds(100))
        #expect(trims.load(ordering: .relaxed) == 1, "a burst past the threshold makes one trim, at once")
        for _ in 0..<50 { heap.released(4) }
        try await Task.sleep(for: .milliseconds(100))
        #expect(trims.load(ordering: .relaxed) == 1, "not again within the interval")
        try await Task.sleep(for: .milliseconds(400))
        #expect(trims.load(ordering: .relaxed) == 2, "the releases meanwhile get their trim once the interval is over")
        // The real one runs (glibc's malloc_trim) without harm.
        HeapTrim.systemTrim()
    }
}

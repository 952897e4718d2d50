import Testing
import WorkerRuntimeTesting

@testable import QueueWorker

@Suite("A handler outside the package, through the public test harness")
struct QueueWorkerTests {
    @Test("adds the numbers; a bad input is an error result naming the field")
    func sums() async throws {
        let result = try await QueueWorker.makeRuntime().test(["numbers": [1, 2, 3.5]])
        #expect(result.output == ["total": 6.5, "count": 3])
        let bad = try await QueueWorker.makeRuntime().test(["numbers": "four"])
        #expect(bad.error?.contains("numbers") == true)
    }
}

import Logging
import Synchronization
import Testing
import TestSupport
import WorkerJSON
@testable import WorkerRuntime
import WorkerRuntimeTesting

/// A queue worker's results get through a platform that is slow, throttling or failing for a
/// while, without holding job slots, and within bounds of time and memory.
@Suite("Result delivery", .defaultPass)
struct ResultDeliveryTests {
    @Test("a result being retried does not hold its slot: the next job runs and is delivered meanwhile")
    func slotFreeWhileRetrying() async throws {
        let source = InMemoryJobSource()
        source.scriptResultOutcomes(for: "slow", .failed("HTTP 502"), .failed("HTTP 503"), .failed("HTTP 504"), .failed("HTTP 500"))
        source.enqueue(["id": "slow", "input": 1], ["id": "next", "input": 2])
        try await withLoop(source: source, handler: ClosureHandler { input, _ in input }) { _ in
            try await waitUntil { source.results.filter { $0.jobID == "slow" }.count == 5 }
        }
        let order = source.results.map(\.jobID)
        // With one slot, "next" could only run once "slow" had handed its result over.
        #expect(order.firstIndex(of: "next")! < order.lastIndex(of: "slow")!, "\(order)")
        #expect(source.results.last { $0.jobID == "slow" }?.body == ["output": 1])
    }

    @Test("a result is given up only after the retry budget, with a log line saying so")
    func budget() async throws {
        let source = InMemoryJobSource()
        for _ in 0..<1000 { source.scriptResultOutcomes(for: "lost", .failed("HTTP 503")) }
        source.enqueue(["id": "lost", "input": 1])
        var config = try testConfiguration()
        config.timings.resultRetryBudget = .milliseconds(400)
        let logs = LogCollector()
        let start = ContinuousClock.now
        try await withLoop(source: source, handler: ClosureHandler { input, _ in input }, configuration: config, logger: logs.logger()) { _ in
            try await waitUntil { logs.all.contains { $0.contains("gave up after") } }
        }
        #expect(ContinuousClock.now - start >= .milliseconds(300))
        let attempts = source.results.count
        #expect(attempts >= 2, "retried with backoff until the budget, not given up at once")
        #expect(logs.all.contains { $0.contains("gave up after \(attempts) attempts") && $0.contains("WORKER_RESULT_RETRY_SECONDS") })
    }

    @Test("429 with Retry-After waits at least that long")
    func retryAfter() async throws {
        let source = InMemoryJobSource()
        source.scriptResultOutcomes(.throttled("HTTP 429", retryAfter: .milliseconds(500)))
        source.enqueue(["id": "j", "input": 1])
        let start = ContinuousClock.now
        try await withLoop(source: source, handler: ClosureHandler { input, _ in input }) { _ in
            try await waitUntil { source.results.count == 2 }
        }
        #expect(ContinuousClock.now - start >= .milliseconds(500))
    }

    @Test("the queue is bounded: with the platform down, finished jobs wait for room instead of piling up")
    func bounded() async throws {
        let source = InMemoryJobSource()
        var timings = fastTimings()
        timings.resultRetryBudget = .seconds(60)
        let queue = ResultDeliveryQueue(sink: source, timings: timings, maxResults: 2, maxBytes: 1 << 20)
        for id in ["a", "b", "c"] { for _ in 0..<20 { source.scriptResultOutcomes(for: id, .failed("HTTP 503")) } }
        func item(_ id: String) throws -> ResultDeliveryQueue.Item {
            .init(jobID: id, payload: try ResultPayload(["output": .string(id)]), isStream: false, logger: Logger(label: "t"))
        }
        await queue.deliver(try item("a"))
        await queue.deliver(try item("b"))
        let third = Task { await queue.deliver(try item("c")) }
        try await Task.sleep(for: .milliseconds(100))
        #expect(queue.pending == 2, "the third waits for room")
        try await withTimeout(.seconds(30)) { try await third.value }
        await queue.drain(grace: .seconds(30), logger: Logger(label: "t"))
        // Twenty failures each, then delivered.
        for id in ["a", "b", "c"] { #expect(source.results.filter { $0.jobID == id }.count == 21, "\(id)") }
        #expect(queue.pending == 0)
    }

    @Test("on shutdown, delivery gets the grace period, then what is left is logged as not delivered")
    func shutdownGrace() async throws {
        let source = InMemoryJobSource()
        for _ in 0..<10_000 { source.scriptResultOutcomes(for: "stuck", .failed("HTTP 503")) }
        source.enqueue(["id": "stuck", "input": 1])
        var config = try testConfiguration()
        config.timings.deliveryGrace = .milliseconds(300)
        config.timings.resultRetryBudget = .seconds(600)
        let logs = LogCollector()
        let loop = WorkerLoop(source: source, context: testContext(handler: ClosureHandler { input, _ in input }, configuration: config, logger: logs.logger()))
        let running = Task { await loop.run() }
        try await waitUntil { source.results.count >= 2 }
        let stopped = ContinuousClock.now
        loop.stop()
        try await withTimeout(.seconds(10)) { await running.value }
        let took = ContinuousClock.now - stopped
        #expect(took >= .milliseconds(250) && took < .seconds(5), "\(took)")
        #expect(logs.all.contains { $0.contains("delivery grace period is over") })
    }
}

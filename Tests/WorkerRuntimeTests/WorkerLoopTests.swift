import Logging
import Synchronization
import Testing
import TestSupport
import WorkerJSON
@testable import WorkerRuntime
import WorkerRuntimeTesting

@Suite("The job loop against an in-memory platform", .defaultPass)
struct WorkerLoopTests {
    @Test("a job's return value is posted as its result (checklist 12, 13)")
    func basicResult() async throws {
        let source = InMemoryJobSource()
        source.enqueue(["id": "j1", "input": ["n": 2]])
        try await withLoop(source: source, handler: ClosureHandler { input, _ in ["doubled": .integer(Int64(input["n"]!.intValue! * 2))] }) { _ in
            let results = try await source.waitForResults(1)
            #expect(results[0] == .init(kind: .result(isStream: false), jobID: "j1", body: ["output": ["doubled": 4]]))
        }
        #expect(source.takes.first == .init(count: 1, jobInProgress: false))
    }

    @Test("the handler gets the whole job object, unknown keys included (checklist 10)")
    func wholeJob() async throws {
        let source = InMemoryJobSource()
        source.enqueue(["id": "j1", "input": 1, "webhook": "http://hook", "batchId": "b7", "extra": [1]])
        let seen = Mutex<JSONValue?>(nil)
        try await withLoop(source: source, handler: ClosureHandler { input, context in
            seen.withLock { $0 = context.job.raw }
            return input
        }) { _ in _ = try await source.waitForResults(1) }
        #expect(seen.withLock { $0 } == ["id": "j1", "input": 1, "webhook": "http://hook", "batchId": "b7", "extra": [1]])
    }

    @Test("with free slots it asks for a batch, job_in_progress set while jobs run (checklist 6, 11)")
    func batches() async throws {
        let source = InMemoryJobSource()
        let gauge = Gauge()
        let release = AsyncSignalBox()
        let handler = ClosureHandler { input, _ in
            gauge.enter()
            defer { gauge.leave() }
            await release.wait()
            return input
        }
        source.enqueue(["id": "a", "input": 1], ["id": "b", "input": 2])
        try await withLoop(source: source, handler: handler, options: .init(concurrency: .fixed(3))) { _ in
            // Two jobs running, one slot free: the next take asks for one job with work in progress.
            try await waitUntil { source.takes.count == 1 && gauge.calls == 2 }
            source.enqueue(["id": "c", "input": 3], ["id": "d", "input": 4])
            try await waitUntil { gauge.calls == 3 }
            release.open()
            _ = try await source.waitForResults(4)
        }
        let takes = source.takes
        #expect(takes[0] == .init(count: 3, jobInProgress: false))
        #expect(takes[1] == .init(count: 1, jobInProgress: true))
        #expect(gauge.peak <= 3)
    }

    @Test("never more jobs in flight than the concurrency function says, re-evaluated while polling (checklist 11)")
    func dynamicConcurrency() async throws {
        let source = InMemoryJobSource()
        let limit = Atomic<Int>(1)
        let gauge = Gauge()
        let handler = ClosureHandler { input, _ in
            gauge.enter()
            defer { gauge.leave() }
            try await Task.sleep(for: .milliseconds(30))
            return input
        }
        for index in 0..<12 { source.enqueue(["id": .string("j\(index)"), "input": .integer(Int64(index))]) }
        try await withLoop(source: source, handler: handler, options: .init(concurrency: .dynamic { _ in limit.load(ordering: .relaxed) })) { _ in
            _ = try await source.waitForResults(4)
            #expect(gauge.peak == 1)
            limit.store(4, ordering: .relaxed)
            _ = try await source.waitForResults(12)
        }
        #expect(gauge.peak > 1)
        #expect(gauge.peak <= 4)
    }

    @Test("the next job is taken as soon as a slot frees, with no fixed sleep")
    func noIdleSleep() async throws {
        let source = InMemoryJobSource()
        for index in 0..<50 { source.enqueue(["id": .string("j\(index)"), "input": nil]) }
        let start = ContinuousClock.now
        try await withLoop(source: source, handler: ClosureHandler { input, _ in input }) { _ in
            _ = try await source.waitForResults(50)
        }
        // runpod-python 1.12.0 sleeps 1 s whenever all slots are busy: 50 jobs would take ~50 s.
        #expect(ContinuousClock.now - start < .seconds(10))
        #expect(source.takes.allSatisfy { $0.count == 1 && !$0.jobInProgress })
    }

    @Test("malformed jobs are logged and skipped; one with an id is answered with an error (checklist 9)")
    func malformedJobs() async throws {
        let source = InMemoryJobSource()
        let logs = LogCollector()
        source.script(
            .jobs(["just a string", ["input": 1], ["id": 5, "input": 1], ["id": "no-input"]]),
            .failed("job-take answered a body that is not valid JSON"))
        source.enqueue(["id": "good", "input": "ok"])
        try await withLoop(source: source, handler: ClosureHandler { input, _ in input }, logger: logs.logger()) { _ in
            let results = try await source.waitForResults(2)
            let noInput = try #require(results.first { $0.jobID == "no-input" })
            #expect(noInput.body["error"]?.stringValue?.contains("no 'input'") == true)
            #expect(results.contains { $0.jobID == "good" && $0.body == ["output": "ok"] })
        }
        let lines = logs.all.joined()
        #expect(lines.contains("a job must be a JSON object"))
        #expect(lines.contains("the job has no 'id' field"))
        #expect(lines.contains("'id' must be a non-empty string"))
        #expect(lines.contains("Failed to get job."))
    }

    @Test("a thrown error becomes an error result and the worker goes on (checklist 17)")
    func thrownError() async throws {
        struct Broken: Error, CustomStringConvertible { var description: String { "disk on fire" } }
        let source = InMemoryJobSource()
        source.enqueue(["id": "bad", "input": "fail"], ["id": "good", "input": "ok"])
        try await withLoop(source: source, handler: ClosureHandler { input, _ in
            if input == "fail" { throw Broken() }
            return input
        }) { _ in
            let results = try await source.waitForResults(2)
            let error = try #require(results[0].body["error"]?.stringValue)
            #expect(try JSONValue.parse(error)["error_message"] == "disk on fire")
            #expect(results[1].body == ["output": "ok"])
        }
    }

    @Test("a typed handler's bad input is an error result naming the field")
    func typedInput() async throws {
        struct Add: JobHandler {
            struct Input: Decodable { var a: Int; var b: Int }
            func handle(_ input: Input, context: JobContext) async throws -> Int { input.a + input.b }
        }
        let source = InMemoryJobSource()
        source.enqueue(["id": "ok", "input": ["a": 1, "b": 2]], ["id": "bad", "input": ["a": 1, "b": "two"]])
        try await withLoop(source: source, handler: CodableHandlerAdapter(handler: Add())) { _ in
            let results = try await source.waitForResults(2)
            #expect(results[0].body == ["output": 3])
            let error = try #require(results[1].body["error"]?.stringValue)
            #expect(try JSONValue.parse(error)["error_message"]?.stringValue?.contains("b") == true)
        }
    }

    @Test("refresh_worker returned: stopPod, and the worker keeps taking jobs (checklist 15)")
    func refreshReturned() async throws {
        let source = InMemoryJobSource()
        source.enqueue(["id": "r", "input": ["x": 1, "refresh_worker": true]], ["id": "next", "input": ["x": 2]])
        try await withLoop(source: source, handler: ClosureHandler { input, _ in input }) { _ in
            let results = try await source.waitForResults(2)
            #expect(results[0].body == ["output": ["x": 1], "stopPod": true])
            #expect(results[1].body == ["output": ["x": 2]])
        }
    }

    @Test("refreshWorker option: every result has stopPod and the loop ends after the job (checklist 16)")
    func refreshOption() async throws {
        let source = InMemoryJobSource()
        source.enqueue(["id": "only", "input": 1], ["id": "never", "input": 2])
        let loop = WorkerLoop(
            source: source,
            context: testContext(
                handler: ClosureHandler { input, _ in input }, options: .init(refreshWorker: true),
                configuration: try testConfiguration()))
        try await withTimeout { await loop.run() }
        #expect(source.results.map(\.body) == [["output": 1, "stopPod": true]])
    }

    @Test("stream chunks are posted in order, then the aggregate with isStream (checklist 19, 20)")
    func streaming() async throws {
        let source = InMemoryJobSource()
        source.enqueue(["id": "s", "input": 3])
        let handler = StreamingClosureHandler { input, _, stream in
            for index in 0..<input.intValue! { try await stream.yield(["tok": .integer(Int64(index))]) }
        }
        try await withLoop(source: source, handler: handler, options: .init(returnAggregateStream: true)) { _ in
            _ = try await source.waitForResults(1)
        }
        let chunks: [JSONValue] = [["tok": 0], ["tok": 1], ["tok": 2]]
        var expected = chunks.map { InMemoryJobSource.Post(kind: .chunk, jobID: "s", body: ["output": $0]) }
        expected.append(.init(kind: .result(isStream: true), jobID: "s", body: ["output": .array(chunks)]))
        #expect(source.posts == expected)
    }

    @Test("without aggregation a stream ends with output []; an empty stream too (checklist 20)")
    func streamWithoutAggregate() async throws {
        let source = InMemoryJobSource()
        source.enqueue(["id": "s", "input": 2], ["id": "empty", "input": 0])
        let handler = StreamingClosureHandler { input, _, stream in
            for index in 0..<input.intValue! { try await stream.yield(.integer(Int64(index))) }
        }
        try await withLoop(source: source, handler: handler) { _ in
            let results = try await source.waitForResults(2)
            #expect(results.allSatisfy { $0.kind == .result(isStream: true) && $0.body == ["output": []] })
        }
    }

    @Test("an error chunk ends the stream unsent; its error is the result (checklist 21)")
    func errorChunk() async throws {
        let source = InMemoryJobSource()
        source.enqueue(["id": "s", "input": nil])
        let handler = StreamingClosureHandler { _, _, stream in
            try await stream.yield(["tok": 0])
            try await stream.yield(["error": "bad chunk", "extra": 1])
            try await stream.yield(["tok": 1])
        }
        try await withLoop(source: source, handler: handler) { _ in _ = try await source.waitForResults(1) }
        #expect(source.posts == [
            .init(kind: .chunk, jobID: "s", body: ["output": ["tok": 0]]),
            .init(kind: .result(isStream: true), jobID: "s", body: ["error": "bad chunk"]),
        ])
    }

    @Test("a stream handler that throws posts 'handler: … traceback: …' with isStream (checklist 22)")
    func streamThrows() async throws {
        struct Broken: Error, CustomStringConvertible { var description: String { "generator broke" } }
        let source = InMemoryJobSource()
        source.enqueue(["id": "s", "input": nil])
        let handler = StreamingClosureHandler { _, _, stream in
            try await stream.yield(1)
            throw Broken()
        }
        try await withLoop(source: source, handler: handler) { _ in _ = try await source.waitForResults(1) }
        let final = try #require(source.results.first)
        #expect(final.kind == .result(isStream: true))
        #expect(final.body["error"]?.stringValue?.hasPrefix("handler: generator broke \ntraceback:") == true)
    }

    @Test("progress posts arrive in order and all before the final result (checklist 23)")
    func progress() async throws {
        let source = InMemoryJobSource()
        source.enqueue(["id": "p", "input": 20])
        let handler = ClosureHandler { input, context in
            for step in 0..<input.intValue! { context.progress(["step": .integer(Int64(step))]) }
            return "done"
        }
        try await withLoop(source: source, handler: handler) { _ in _ = try await source.waitForResults(1) }
        let posts = source.posts
        #expect(posts.count == 21)
        for step in 0..<20 {
            #expect(posts[step] == .init(kind: .result(isStream: false), jobID: "p", body: ["status": "IN_PROGRESS", "output": ["step": .integer(Int64(step))]]))
        }
        #expect(posts[20].body == ["output": "done"])
    }

    @Test("a stop request cancels only that job and posts nothing for it (checklist 27)")
    func stopOneJob() async throws {
        let source = InMemoryJobSource()
        let cancelled = Atomic<Bool>(false)
        let handler = ClosureHandler { input, _ in
            if input == "long" {
                do {
                    try await Task.sleep(for: .seconds(30))
                } catch {
                    cancelled.store(true, ordering: .relaxed)
                    throw error
                }
            }
            try await Task.sleep(for: .milliseconds(200))
            return input
        }
        source.enqueue(["id": "long", "input": "long"], ["id": "sibling", "input": "short"])
        try await withLoop(source: source, handler: handler, options: .init(concurrency: .fixed(2))) { loop in
            try await waitUntil { loop.jobsInProgress.count == 2 }
            source.requestStop("long", "unknown-job")
            try await waitUntil { cancelled.load(ordering: .relaxed) }
            let results = try await source.waitForResults(1)
            #expect(results.map(\.jobID) == ["sibling"])
            try await waitUntil { loop.jobsInProgress.isEmpty }
        }
        #expect(!source.posts.contains { $0.jobID == "long" })
    }

    @Test("stop() lets running jobs finish and post, takes no more, then returns (checklist 29)")
    func gracefulStop() async throws {
        let source = InMemoryJobSource()
        source.enqueue(["id": "running", "input": 1])
        let started = Atomic<Bool>(false)
        let handler = ClosureHandler { input, _ in
            started.store(true, ordering: .relaxed)
            try await Task.sleep(for: .milliseconds(300))
            return input
        }
        let loop = WorkerLoop(source: source, context: testContext(handler: handler, configuration: try testConfiguration()))
        let running = Task { await loop.run() }
        try await waitUntil { started.load(ordering: .relaxed) }
        loop.stop()
        source.enqueue(["id": "late", "input": 2])
        try await withTimeout { await running.value }
        #expect(source.results.map(\.jobID) == ["running"])
        #expect(source.takes.count == 1)
    }

    @Test("job-done is retried on 5xx, 429 and network failures until delivered (checklist 18)")
    func resultRetries() async throws {
        let source = InMemoryJobSource()
        source.scriptResultOutcomes(.failed("HTTP 503"), .throttled("HTTP 429", retryAfter: nil), .failed("connection reset"))
        source.enqueue(["id": "j", "input": 1])
        try await withLoop(source: source, handler: ClosureHandler { input, _ in input }) { _ in
            try await waitUntil { source.results.count == 4 }
        }
        #expect(source.results.map(\.body) == Array(repeating: ["output": 1], count: 4))
    }

    @Test("a refused result (4xx) is not retried; an error result saying why is sent instead")
    func refusedResult() async throws {
        let source = InMemoryJobSource()
        source.scriptResultOutcomes(.rejected("HTTP 400: Bad Request"))
        source.enqueue(["id": "j", "input": 1])
        try await withLoop(source: source, handler: ClosureHandler { input, _ in input }) { _ in
            try await waitUntil { source.results.count == 2 }
        }
        let results = source.results
        #expect(results[0].body == ["output": 1])
        #expect(results[1].body["error"]?.stringValue?.contains("refused the job's result: HTTP 400") == true)
    }

    @Test("429 waits before the next take; failures back off instead of spinning (checklist 8)")
    func waitsAndBackoff() async throws {
        let source = InMemoryJobSource()
        source.script(.tooManyRequests)
        source.enqueue(["id": "j", "input": 1])
        let start = ContinuousClock.now
        try await withLoop(source: source, handler: ClosureHandler { input, _ in input }) { _ in
            _ = try await source.waitForResults(1)
        }
        #expect(ContinuousClock.now - start >= .milliseconds(300))

        let failing = InMemoryJobSource()
        for _ in 0..<6 { failing.script(.failed("HTTP 500")) }
        failing.enqueue(["id": "j", "input": 1])
        let failStart = ContinuousClock.now
        try await withLoop(source: failing, handler: ClosureHandler { input, _ in input }) { _ in
            _ = try await failing.waitForResults(1)
        }
        // Six failures at base 20 ms doubling (capped at 200 ms, at least half of each step): ≥ 0.3 s.
        #expect(ContinuousClock.now - failStart >= .milliseconds(300))
        #expect(failing.takes.count == 7)
    }

    @Test("results over the 10 MB limit are reported as errors, not dropped")
    func oversized() async throws {
        let source = InMemoryJobSource()
        source.enqueue(["id": "big", "input": .integer(11 * 1024 * 1024)])
        let handler = ClosureHandler { input, _ in .string(String(repeating: "y", count: input.intValue!)) }
        try await withLoop(source: source, handler: handler) { _ in
            let results = try await source.waitForResults(1)
            #expect(results[0].body["error"]?.stringValue?.contains("over the platform's limit") == true)
        }
    }
}

/// A gate that handlers wait on until the test opens it.

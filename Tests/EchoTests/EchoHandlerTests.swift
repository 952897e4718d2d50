import Synchronization
import Testing
import TestSupport
import WorkerJSON
import WorkerRuntime
import WorkerRuntimeTesting

@testable import Echo

@Suite("The echo handler", .defaultPass)
struct EchoHandlerTests {
    let runtime = Echo.makeRuntime()

    @Test("answers with its input unchanged, control keys included")
    func echoes() async throws {
        let input: JSONValue = ["a": 1, "nested": ["b": [true, nil]], "sleep": 0, "progress": 0]
        #expect(try await runtime.test(input).body == ["output": input])
        #expect(try await runtime.test("plain").body == ["output": "plain"])
        #expect(try await runtime.test([1, 2]).body == ["output": [1, 2]])
    }

    @Test("fail throws; return_error returns exactly that error")
    func errors() async throws {
        let failed = try #require(try await runtime.test(["fail": "boom"]).error)
        #expect(try JSONValue.parse(failed)["error_message"] == "boom")
        #expect(try await runtime.test(["return_error": "nope", "x": 1]).body == ["error": "nope"])
    }

    @Test("progress posts N updates {step: i} before the result")
    func progress() async throws {
        let result = try await runtime.test(["progress": 3])
        #expect(result.progress == [["step": 0], ["step": 1], ["step": 2]])
        #expect(result.body == ["output": ["progress": 3]])
    }

    @Test("stream yields N chunks, aggregated into the final result")
    func stream() async throws {
        let result = try await runtime.test(["stream": 2])
        #expect(result.chunks == [["chunk": 0], ["chunk": 1]])
        #expect(result.isStream)
        #expect(result.body == ["output": [["chunk": 0], ["chunk": 1]]])
        #expect(try await runtime.test(["stream": 0]).body == ["output": []])
    }

    @Test("refresh requests refresh_worker; size adds a blob of that many bytes")
    func refreshAndSize() async throws {
        #expect(try await runtime.test(["refresh": true, "k": 1]).body == ["output": ["refresh": true, "k": 1], "stopPod": true])
        let sized = try #require(try await runtime.test(["size": 1000]).output)
        #expect(sized["blob"]?.stringValue?.utf8.count == 1000)
        #expect(sized["size"] == 1000)
    }

    @Test("sleep with progress posts each update while sleeping, not after (the README's /status example)")
    func progressDuringSleep() async throws {
        let job = Job(id: "p", input: ["sleep": 0.6, "progress": 3])
        let posted = Mutex<[(JSONValue, ContinuousClock.Instant)]>([])
        let start = ContinuousClock.now
        try await EchoHandler().handle(
            job, output: JobOutputWriter(aggregateChunks: false) { _ in },
            context: .testing(job: job) { update in posted.withLock { $0.append((update, ContinuousClock.now)) } })
        let end = ContinuousClock.now
        let updates = posted.withLock { $0 }
        #expect(updates.map(\.0) == [["step": 0], ["step": 1], ["step": 2]])
        #expect(end - start >= .milliseconds(600))
        // The first update is posted before any sleeping, the last a third of the sleep before the end.
        #expect(try #require(updates.first).1 - start < .milliseconds(150))
        #expect(end - (try #require(updates.last).1) >= .milliseconds(190))
    }

    @Test("sleep waits, and cancelling the job (a platform stop) ends the sleep at once")
    func sleepCancellable() async throws {
        let start = ContinuousClock.now
        _ = try await runtime.test(["sleep": 0.2])
        #expect(ContinuousClock.now - start >= .milliseconds(200))

        let job = Job(id: "s", input: ["sleep": 60])
        let running = Task {
            try await EchoHandler().handle(
                job, output: JobOutputWriter(aggregateChunks: false) { _ in }, context: .testing(job: job))
        }
        try await Task.sleep(for: .milliseconds(50))
        let stoppedAt = ContinuousClock.now
        running.cancel()
        await #expect(throws: CancellationError.self) { try await running.value }
        #expect(ContinuousClock.now - stoppedAt < .seconds(5))
    }

    @Test(
        "a mistyped or out-of-range control key is an error result naming the key",
        arguments: [
            (["sleep": "long"], "input.sleep"), (["sleep": -1], "input.sleep"), (["fail": 3], "input.fail"),
            (["return_error": ["x": 1]], "input.return_error"), (["progress": 1.5], "input.progress"),
            (["stream": -2], "input.stream"), (["size": 1e12], "input.size"), (["refresh": "yes"], "input.refresh"),
        ] as [(JSONValue, String)])
    func badControls(input: JSONValue, key: String) async throws {
        let error = try #require(try await runtime.test(input).error)
        let message = try #require(try JSONValue.parse(error)["error_message"]?.stringValue)
        #expect(message.contains(key))
    }
}

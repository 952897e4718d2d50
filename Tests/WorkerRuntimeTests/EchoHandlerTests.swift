import Synchronization
import Testing
import WorkerRuntime
import WorkerRuntimeTesting

@testable import Echo

@Suite("The echo handler")
struct EchoHandlerTests {
    /// Runs one echo job through the loop and returns what was posted for it.
    func run(_ input: JSONValue) async throws -> [InMemoryJobSource.Post] {
        let source = InMemoryJobSource()
        source.enqueue(["id": "e", "input": input])
        let runtime = Echo.makeRuntime()
        try await withLoop(source: source, handler: runtime.handler, options: runtime.options) { _ in
            _ = try await source.waitForResults(1)
        }
        return source.posts
    }

    @Test("answers with its input unchanged, control keys included")
    func echoes() async throws {
        let input: JSONValue = ["a": 1, "nested": ["b": [true, nil]], "sleep": 0, "progress": 0]
        #expect(try await run(input).last?.body == ["output": input])
        #expect(try await run("plain").last?.body == ["output": "plain"])
        #expect(try await run([1, 2]).last?.body == ["output": [1, 2]])
    }

    @Test("fail throws; return_error returns exactly that error")
    func errors() async throws {
        let failed = try #require(try await run(["fail": "boom"]).last?.body["error"]?.stringValue)
        #expect(try JSONValue.parse(failed)["error_message"] == "boom")
        #expect(try await run(["return_error": "nope", "x": 1]).last?.body == ["error": "nope"])
    }

    @Test("progress posts N updates {step: i} before the result")
    func progress() async throws {
        let posts = try await run(["progress": 3])
        #expect(posts.map(\.body) == [
            ["status": "IN_PROGRESS", "output": ["step": 0]], ["status": "IN_PROGRESS", "output": ["step": 1]],
            ["status": "IN_PROGRESS", "output": ["step": 2]], ["output": ["progress": 3]],
        ])
    }

    @Test("stream yields N chunks, aggregated into the final result")
    func stream() async throws {
        let posts = try await run(["stream": 2])
        #expect(posts == [
            .init(kind: .chunk, jobID: "e", body: ["output": ["chunk": 0]]),
            .init(kind: .chunk, jobID: "e", body: ["output": ["chunk": 1]]),
            .init(kind: .result(isStream: true), jobID: "e", body: ["output": [["chunk": 0], ["chunk": 1]]]),
        ])
        #expect(try await run(["stream": 0]).last == .init(kind: .result(isStream: true), jobID: "e", body: ["output": []]))
    }

    @Test("refresh requests refresh_worker; size adds a blob of that many bytes")
    func refreshAndSize() async throws {
        #expect(try await run(["refresh": true, "k": 1]).last?.body == ["output": ["refresh": true, "k": 1], "stopPod": true])
        let sized = try #require(try await run(["size": 1000]).last?.body["output"])
        #expect(sized["blob"]?.stringValue?.utf8.count == 1000)
        #expect(sized["size"] == 1000)
    }

    @Test("sleep waits, and a stop cancels the sleep")
    func sleepCancellable() async throws {
        let start = ContinuousClock.now
        _ = try await run(["sleep": 0.2])
        #expect(ContinuousClock.now - start >= .milliseconds(200))

        let source = InMemoryJobSource()
        source.enqueue(["id": "s", "input": ["sleep": 60]])
        let runtime = Echo.makeRuntime()
        let stoppedAt = Mutex<ContinuousClock.Instant?>(nil)
        try await withLoop(source: source, handler: runtime.handler, options: runtime.options) { loop in
            try await waitUntil { loop.jobsInProgress == ["s"] }
            stoppedAt.withLock { $0 = .now }
            source.requestStop("s")
            try await waitUntil { loop.jobsInProgress.isEmpty }
        }
        #expect(ContinuousClock.now - stoppedAt.withLock { $0! } < .seconds(5))
        #expect(source.posts.isEmpty)
    }

    @Test(
        "a mistyped or out-of-range control key is an error result naming the key",
        arguments: [
            (["sleep": "long"], "input.sleep"), (["sleep": -1], "input.sleep"), (["fail": 3], "input.fail"),
            (["return_error": ["x": 1]], "input.return_error"), (["progress": 1.5], "input.progress"),
            (["stream": -2], "input.stream"), (["size": 1e12], "input.size"), (["refresh": "yes"], "input.refresh"),
        ] as [(JSONValue, String)])
    func badControls(input: JSONValue, key: String) async throws {
        let error = try #require(try await run(input).last?.body["error"]?.stringValue)
        let message = try #require(try JSONValue.parse(error)["error_message"]?.stringValue)
        #expect(message.contains(key))
    }
}

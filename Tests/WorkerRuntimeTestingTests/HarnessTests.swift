import Synchronization
import Testing
import TestSupport
import WorkerJSON
import WorkerRuntime
import WorkerRuntimeTesting

@Suite("The one-call test harness", .defaultPass)
struct HarnessTests {
    struct Sum: Decodable { var a: Int; var b: Int }
    struct Total: Encodable, Equatable { var total: Int }

    @Test("a typed closure: input decoded, output encoded; a bad input is an error naming the field")
    func typedClosure() async throws {
        let runtime = WorkerRuntime { (input: Sum, _: JobContext) async throws -> Total in Total(total: input.a + input.b) }
        let result = try await runtime.test(["a": 2, "b": 3])
        #expect(result.output == ["total": 5])
        #expect(result.succeeded)
        let bad = try await runtime.test(["a": "two", "b": 3])
        #expect(bad.error?.contains("a") == true)
        #expect(!bad.succeeded)
    }

    @Test("streams and progress are collected in order; the body is what the platform would get")
    func streamsAndProgress() async throws {
        let runtime = WorkerRuntime(options: WorkerOptions(returnAggregateStream: true)) { input, context, stream in
            context.progress(["half": true])
            for index in 0..<(input.intValue ?? 0) { try await stream.yield(["n": .integer(Int64(index))]) }
        }
        let result = try await runtime.test(3)
        #expect(result.chunks == [["n": 0], ["n": 1], ["n": 2]])
        #expect(result.progress == [["half": true]])
        #expect(result.isStream)
        #expect(result.body == ["output": [["n": 0], ["n": 1], ["n": 2]]])
    }

    @Test("start runs before the job and shutdown after it; the deadline comes from the job's policy")
    func lifecycleAndDeadline() async throws {
        final class Recorder: Sendable { let events = Mutex<[String]>([]) }
        struct Handler: JSONJobHandler {
            let recorder: Recorder
            func start() async throws { recorder.events.withLock { $0.append("start") } }
            func shutdown() async throws { recorder.events.withLock { $0.append("shutdown") } }
            func handle(_ input: JSONValue, context: JobContext) async throws -> JSONValue {
                recorder.events.withLock { $0.append("job") }
                let remaining = try #require(context.remainingTime)
                return ["remaining_ms": .integer(remaining.components.seconds * 1000)]
            }
        }
        let recorder = Recorder()
        let result = try await WorkerRuntime(handler: Handler(recorder: recorder)).test(
            nil, job: ["policy": ["executionTimeout": 5000]])
        #expect(recorder.events.withLock { $0 } == ["start", "job", "shutdown"])
        let remaining = try #require(result.output?["remaining_ms"]?.intValue)
        #expect((4000...5000).contains(remaining))
    }

    @Test("a job that runs past the harness's timeout fails the test instead of hanging it")
    func timesOut() async throws {
        let runtime = WorkerRuntime { input, _ in
            try await Task.sleep(for: .seconds(30))
            return input
        }
        await #expect(throws: TimeoutError.self) { try await runtime.test(1, timeout: .milliseconds(200)) }
    }

    @Test("waitUntil polls until the condition holds, and names what it waited for when it does not")
    func waiting() async throws {
        let start = ContinuousClock.now
        try await waitUntil { ContinuousClock.now - start > .milliseconds(30) }
        do {
            try await waitUntil("the impossible", timeout: .milliseconds(50)) { false }
            Issue.record("waitUntil returned for a condition that never held")
        } catch let error as TimeoutError {
            #expect(error.description.contains("the impossible"))
        }
    }
}

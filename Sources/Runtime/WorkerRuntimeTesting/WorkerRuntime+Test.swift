import CurlHTTP
import Logging
import Synchronization
import WorkerJSON
import WorkerRuntime

extension WorkerRuntime {
    /// Runs one job through the handler exactly as `--test-input` does (start, the job, shutdown),
    /// with everything a worker applies: the handler adapters, input decoding, the stream and
    /// progress rules, result encoding and size limits, the OpenAI passthrough when configured.
    /// Returns what it produced; throws `TimeoutError` if it takes longer than `timeout`.
    ///
    /// ```swift
    /// let result = try await Echo.makeRuntime().test(["hello": "world"])
    /// #expect(result.output == ["hello": "world"])
    /// ```
    public func test(
        _ input: JSONValue, job extra: [String: JSONValue] = [:], id: String = "test-job", timeout: Duration = .seconds(30)
    ) async throws -> JobTestResult {
        // The features' settings as a worker would read them (the passthrough's OPENAI_BASE_URL, …).
        let resolved = try Self.resolve(arguments: [], environment: testEnvironment, options: options, features: features)
        let client = CurlHTTPClient(name: "test-http")
        let sink = RecordingSink()
        let logger = testLogger ?? Logger(label: "test")
        let context = makeContext(
            mode: .oneShot(testInput: nil), configuration: resolved.configuration, settings: resolved.settings, client: client, logger: logger)
        let job = Job(id: id, input: input, extra: extra)
        do {
            let result = try await withTimeout(timeout, "job \(id)") { () async throws -> JobRunner.FinalResult? in
                guard await context.startHandler() else { throw WorkerRuntimeError.startupFailed }
                let result = await context.runner(sink: sink).run(job, wasStopped: { false })
                await context.shutdownHandler()
                return result
            }
            await client.shutdown()
            guard let result else { throw WorkerRuntimeError.jobFailed(id) }
            let error = result.json["error"].map(ResultBody.errorText)
            return JobTestResult(
                output: result.json["output"], error: error, chunks: sink.chunks, progress: sink.progress,
                isStream: result.isStream, body: result.json)
        } catch {
            await client.shutdown()
            throw error
        }
    }
}

/// Keeps what the runner delivers instead of posting it.
private final class RecordingSink: ResultSink {
    private let state = Mutex<(chunks: [JSONValue], progress: [JSONValue])>(([], []))

    var chunks: [JSONValue] { state.withLock { $0.chunks } }
    var progress: [JSONValue] { state.withLock { $0.progress } }

    func postResult(_ body: ResultPayload, jobID: String, isStream: Bool) async -> DeliveryOutcome {
        if body.json["status"] == "IN_PROGRESS" {
            state.withLock { $0.progress.append(body.json["output"] ?? .null) }
        }
        return .delivered
    }

    func postChunk(_ body: ResultPayload, jobID: String) async -> DeliveryOutcome {
        state.withLock { $0.chunks.append(body.json["output"] ?? .null) }
        return .delivered
    }
}

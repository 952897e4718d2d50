#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Logging

/// One job from `--test-input` or `./test_input.json`, run in-process; the result is printed and
/// the exit code says whether it failed (section 2.1). Streams are iterated and their chunks printed.
struct OneShotRun: Sendable {
    let handler: any RawJobHandler
    let options: WorkerOptions
    let configuration: WorkerConfiguration
    let logger: Logger
    let print: @Sendable (String) -> Void

    /// Loads the job: the flag wins over the file; a missing `id` becomes `local_test`.
    static func loadJob(argument: String?, fileURL: URL) throws(WorkerRuntimeError) -> Job {
        let bytes: [UInt8]
        if let argument {
            bytes = Array(argument.utf8)
        } else {
            guard let data = try? Data(contentsOf: fileURL) else { throw .testInputMissing }
            bytes = Array(data)
        }
        let parsed: JSONValue
        do {
            parsed = try JSONValue.parse(bytes)
        } catch {
            throw .testInputInvalid(error.description)
        }
        guard case .object(var object) = parsed, object["input"] != nil else { throw .testInputHasNoInput }
        if object["id"]?.stringValue == nil { object["id"] = "local_test" }
        do {
            return try Job(json: .object(object))
        } catch {
            throw .testInputInvalid(error.description)
        }
    }

    func run(_ job: Job) async -> Int32 {
        let sink = ConsoleSink(print: print)
        let runner = JobRunner(
            handler: handler, sink: sink, options: options, configuration: configuration, logger: logger)
        guard let result = await runner.run(job, wasStopped: { false }) else { return 1 }
        let text = String(decoding: result.body, as: UTF8.self)
        print("Job result: \(text)")
        if result.isError {
            let error = result.json["error"].map(ResultBody.errorText) ?? text
            logger.error("Job \(job.id) failed with error: \(error)")
            return 1
        }
        logger.info("Job \(job.id) completed successfully.")
        logger.info("Local testing complete, exiting.")
        return 0
    }
}

/// Prints chunks and progress as they come, instead of posting them.
struct ConsoleSink: ResultSink {
    let print: @Sendable (String) -> Void

    func postResult(_ body: ResultPayload, jobID: String, isStream: Bool) async -> DeliveryOutcome {
        if body.json["status"] == "IN_PROGRESS" {
            print("Progress: \((try? body.json["output"]?.jsonString()) ?? "null")")
        }
        return .delivered
    }

    func postChunk(_ body: ResultPayload, jobID: String) async -> DeliveryOutcome {
        print("Stream chunk: \((try? body.json["output"]?.jsonString()) ?? String(decoding: body.bytes, as: UTF8.self))")
        return .delivered
    }
}

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Logging
import ServiceLifecycle
import Synchronization
import WorkerJSON

/// One job from `--test-input` or `./test_input.json`, run in-process; the result is printed and
/// the exit code says whether it failed (docs/protocol.md, section 2.1). Streams are iterated and their chunks printed.
struct OneShotRun: Sendable {
    let context: WorkerContext
    let print: @Sendable (String) -> Void

    package init(context: WorkerContext, print: @escaping @Sendable (String) -> Void) {
        self.context = context
        self.print = print
    }

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

    package func run(_ job: Job) async -> Int32 {
        let logger = context.logger
        let runner = context.runner(sink: ConsoleSink(print: print))
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

/// The one-shot mode as the worker's main service: starts the handler, runs the job, shuts the
/// handler down; a failure is kept in `outcome` for the exit status.
struct OneShotService: Service {
    let context: WorkerContext
    let testInput: String?
    let outcome: OneShotOutcome

    func run() async throws {
        let job: Job
        do {
            job = try OneShotRun.loadJob(argument: testInput, fileURL: URL(fileURLWithPath: "test_input.json"))
        } catch {
            context.logger.error("\(error)")
            outcome.fail(error)
            return
        }
        guard await context.startHandler() else {
            outcome.fail(.startupFailed)
            return
        }
        let status = await OneShotRun(context: context, print: { Swift.print($0) }).run(job)
        await context.shutdownHandler()
        if status != 0 { outcome.fail(.jobFailed(job.id)) }
    }
}

/// Why a one-shot run failed, if it did (the exit status is 1 then).
final class OneShotOutcome: Sendable {
    private let state = Mutex<WorkerRuntimeError?>(nil)
    func fail(_ error: WorkerRuntimeError) { state.withLock { $0 = $0 ?? error } }
    var failure: WorkerRuntimeError? { state.withLock { $0 } }
}

/// Prints chunks and progress as they come, instead of posting them.
package struct ConsoleSink: ResultSink {
    let print: @Sendable (String) -> Void

    package func postResult(_ body: ResultPayload, jobID: String, isStream: Bool) async -> DeliveryOutcome {
        if body.json["status"] == "IN_PROGRESS" {
            print("Progress: \((try? body.json["output"]?.jsonString()) ?? "null")")
        }
        return .delivered
    }

    package func postChunk(_ body: ResultPayload, jobID: String) async -> DeliveryOutcome {
        print("Stream chunk: \((try? body.json["output"]?.jsonString()) ?? String(decoding: body.bytes, as: UTF8.self))")
        return .delivered
    }
}

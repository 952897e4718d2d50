#if canImport(Glibc)
import Glibc
#endif
import Logging
import WorkerJSON
import WorkerRuntime

/// The reference handler: answers with its input object unchanged, except where a control key
/// says otherwise. Exercises every runtime feature, for tests and smoke images.
///
/// Control keys: `sleep` (seconds, cancellable), `cpu` (seconds of busy work that never yields, like
/// a synchronous model call), `fail` (throw with that message), `return_error`
/// (return `{"error": …}`), `progress` (N updates `{"step": i}`, spread over `sleep` when both are given; `note` adds a `message` to each), `stream` (N chunks
/// `{"chunk": i}`), `refresh` (request `refresh_worker`), `size` (add a `blob` of that many bytes),
/// `crash` (after `sleep`, the process kills itself with SIGKILL: no result, no clean-up, as an
/// out-of-memory kill would; a poison job for the fleet's tests and outside checks).
struct EchoHandler: RawJobHandler {
    /// Upper bounds that keep a bad job from exhausting the worker.
    static let maxSleepSeconds = 3600.0
    static let maxCount = 100_000
    static let maxBlobBytes = 64 * 1024 * 1024

    func handle(_ job: Job, output: JobOutputWriter, context: JobContext) async throws {
        guard case .object(var object) = job.input else {
            // Not an object: no control keys to read, so the value is echoed as it is.
            try output.respond(job.input)
            return
        }
        let controls = try EchoControls(object)
        try await Self.sleepReportingProgress(controls, context: context)
        if controls.crash {
            context.logger.warning("input.crash is true: this process ends now (SIGKILL)")
            kill(getpid(), SIGKILL)
        }
        if let seconds = controls.cpu, seconds > 0 { Self.busyWork(seconds: seconds) }
        if let message = controls.fail { throw EchoFailure(message: message) }
        if let message = controls.returnError {
            try output.respond(["error": .string(message)])
            return
        }
        if let size = controls.size {
            object["blob"] = .string(String(repeating: "x", count: size))
        }
        if controls.refresh { object["refresh_worker"] = true }
        if let chunks = controls.stream {
            output.beginStream()
            for index in 0..<chunks {
                try context.checkCancellation()
                try await output.yield(["chunk": .integer(Int64(index))])
            }
            return
        }
        try output.respond(.object(object))
    }
}

extension EchoHandler {
    /// `progress` updates spread over `sleep`: each one posted, then a share of the sleep, so a
    /// client polling `/status` sees them while the job runs (the README's example shows this).
    static func sleepReportingProgress(_ controls: EchoControls, context: JobContext) async throws {
        let milliseconds = Int64((controls.sleep ?? 0) * 1000)
        guard controls.progress > 0 else {
            if milliseconds > 0 { try await Task.sleep(for: .milliseconds(milliseconds)) }
            return
        }
        let share = milliseconds / Int64(controls.progress)
        for step in 0..<controls.progress {
            var update: [String: JSONValue] = ["step": .integer(Int64(step))]
            if let note = controls.note { update["message"] = .string(note) }
            context.progress(.object(update))
            if share > 0 { try await Task.sleep(for: .milliseconds(share)) }
        }
        let rest = milliseconds - share * Int64(controls.progress)
        if rest > 0 { try await Task.sleep(for: .milliseconds(rest)) }
    }

    /// Holds the thread without awaiting: what a CPU-bound handler does to the cooperative pool.
    static func busyWork(seconds: Double) {
        let end = ContinuousClock.now + .milliseconds(Int64(seconds * 1000))
        var counter: UInt64 = 0
        while ContinuousClock.now < end { counter &+= 1 }
        precondition(counter > 0)
    }
}

/// The thrown error of `fail`.
struct EchoFailure: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}

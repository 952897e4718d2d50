import WorkerJSON
import WorkerRuntime

/// A handler for the runtime's own tests (which must not depend on the bundled handlers): echoes
/// its input, except `sleep` (seconds, cancellable), `fail` (throw that message), `return_error`, `progress` (N
/// updates `{"step": i}`) and `stream` (N chunks `{"chunk": i}`) in an object input.
package struct TestEchoHandler: RawJobHandler {
    package init() {}

    package func handle(_ job: Job, output: JobOutputWriter, context: JobContext) async throws {
        guard case .object(let input) = job.input else {
            try output.respond(job.input)
            return
        }
        if let seconds = input["sleep"]?.doubleValue { try await Task.sleep(for: .milliseconds(Int64(seconds * 1000))) }
        if let message = input["fail"]?.stringValue { throw TestFailure(message: message) }
        if let message = input["return_error"]?.stringValue {
            try output.respond(["error": .string(message)])
            return
        }
        for step in 0..<(input["progress"]?.intValue ?? 0) { context.progress(["step": .integer(Int64(step))]) }
        if let count = input["stream"]?.intValue {
            output.beginStream()
            for index in 0..<count { try await output.yield(["chunk": .integer(Int64(index))]) }
            return
        }
        try output.respond(job.input)
    }
}

/// The error `TestEchoHandler` throws for `fail`.
package struct TestFailure: Error, CustomStringConvertible {
    package let message: String
    package init(message: String) { self.message = message }
    package var description: String { message }
}

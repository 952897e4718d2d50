/// Errors of the runtime itself, each with a message that says what to do.
public struct WorkerRuntimeError: Error, CustomStringConvertible, Sendable, Equatable {
    private enum Code: Sendable, Equatable {
        case streamAlreadyEnded
        case mixedOutput
        case respondedTwice
        case chunkTooLarge(Int, limit: Int)
        case testInputMissing
        case testInputInvalid(String)
        case testInputHasNoInput
        case alreadyRunning
        case arguments(String, exitCode: Int32)
        case configuration(String)
        case featureMissing(String)
        case invalidTool(String)
        case startupFailed
        case jobFailed(String)
        case processFilesystemMissing(String, reason: String)
    }

    private let code: Code

    static let streamAlreadyEnded = Self(code: .streamAlreadyEnded)
    static let mixedOutput = Self(code: .mixedOutput)
    static let respondedTwice = Self(code: .respondedTwice)
    static func chunkTooLarge(_ bytes: Int, limit: Int) -> Self { Self(code: .chunkTooLarge(bytes, limit: limit)) }
    static let testInputMissing = Self(code: .testInputMissing)
    static func testInputInvalid(_ reason: String) -> Self { Self(code: .testInputInvalid(reason)) }
    static let testInputHasNoInput = Self(code: .testInputHasNoInput)
    static let alreadyRunning = Self(code: .alreadyRunning)
    package static func arguments(_ message: String, exitCode: Int32) -> Self { Self(code: .arguments(message, exitCode: exitCode)) }
    package static func configuration(_ error: ConfigurationError) -> Self { Self(code: .configuration(error.description)) }
    static func featureMissing(_ what: String) -> Self { Self(code: .featureMissing(what)) }
    static func invalidTool(_ what: String) -> Self { Self(code: .invalidTool(what)) }
    package static let startupFailed = Self(code: .startupFailed)
    package static func jobFailed(_ id: String) -> Self { Self(code: .jobFailed(id)) }
    static func processFilesystemMissing(_ path: String, reason: String) -> Self {
        Self(code: .processFilesystemMissing(path, reason: reason))
    }

    /// The process exit status this error calls for (ArgumentParser's for flags; 1 otherwise).
    var exitCode: Int32 {
        if case .arguments(_, let exitCode) = code { return exitCode }
        return 1
    }

    /// Flags `--help` asked for: printed to standard output, not reported as an error.
    var isHelp: Bool {
        if case .arguments(_, let exitCode) = code { return exitCode == 0 }
        return false
    }

    public var description: String {
        switch code {
        case .streamAlreadyEnded:
            return "the stream already ended with an error chunk; return after yielding an error"
        case .mixedOutput:
            return "a job either streams chunks (yield) or returns one value (respond), not both"
        case .respondedTwice:
            return "respond(_:) was called twice for one job; call it once"
        case .chunkTooLarge(let bytes, let limit):
            return limit == ResultBody.maxChunkBytes
                ? "a stream chunk of \(bytes) bytes is over the platform's limit of 1 MiB; yield smaller chunks"
                : "a stream chunk of \(bytes) bytes is over the limit of \(limit) bytes here; yield smaller chunks"
        case .testInputMissing:
            return "test_input.json not found, exiting. Pass --test-input '{\"input\": {...}}' or create ./test_input.json"
        case .testInputInvalid(let reason):
            return "the test input is not valid JSON: \(reason)"
        case .testInputHasNoInput:
            return "Job has no input parameter. Unable to run. The test input must be an object with an \"input\" key"
        case .alreadyRunning:
            return "this WorkerRuntime was already run; a runtime runs once (create another to run again)"
        case .arguments(let message, _):
            return message
        case .configuration(let message):
            return message
        case .featureMissing(let what):
            return what
        case .invalidTool(let what):
            return "WorkerOptions.tools: \(what)"
        case .startupFailed:
            return "the handler's start-up failed (the error is logged above); the worker cannot take jobs"
        case .jobFailed(let id):
            return "job \(id) failed (its error is printed above)"
        case .processFilesystemMissing(let path, let reason):
            return
                "/proc is not mounted (\(path): \(reason)); the Swift runtime needs it (its thread pool reads /proc/<thread>/stat and stops the process without it, and the command line comes from /proc/self/cmdline). Run the worker with /proc mounted, as every container runtime does"
        }
    }
}

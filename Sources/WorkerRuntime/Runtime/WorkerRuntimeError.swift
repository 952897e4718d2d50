/// Errors of the runtime itself, each with a message that says what to do.
public struct WorkerRuntimeError: Error, CustomStringConvertible, Sendable, Equatable {
    private enum Code: Sendable, Equatable {
        case streamAlreadyEnded
        case mixedOutput
        case respondedTwice
        case chunkTooLarge(Int)
        case testInputMissing
        case testInputInvalid(String)
        case testInputHasNoInput
    }

    private let code: Code

    public static let streamAlreadyEnded = Self(code: .streamAlreadyEnded)
    public static let mixedOutput = Self(code: .mixedOutput)
    public static let respondedTwice = Self(code: .respondedTwice)
    public static func chunkTooLarge(_ bytes: Int) -> Self { Self(code: .chunkTooLarge(bytes)) }
    public static let testInputMissing = Self(code: .testInputMissing)
    public static func testInputInvalid(_ reason: String) -> Self { Self(code: .testInputInvalid(reason)) }
    public static let testInputHasNoInput = Self(code: .testInputHasNoInput)

    public var description: String {
        switch code {
        case .streamAlreadyEnded:
            return "the stream already ended with an error chunk; return after yielding an error"
        case .mixedOutput:
            return "a job either streams chunks (yield) or returns one value (respond), not both"
        case .respondedTwice:
            return "respond(_:) was called twice for one job; call it once"
        case .chunkTooLarge(let bytes):
            return "a stream chunk of \(bytes) bytes is over the platform's 1 MiB limit; yield smaller chunks"
        case .testInputMissing:
            return "test_input.json not found, exiting. Pass --test-input '{\"input\": {...}}' or create ./test_input.json"
        case .testInputInvalid(let reason):
            return "the test input is not valid JSON: \(reason)"
        case .testInputHasNoInput:
            return "Job has no input parameter. Unable to run. The test input must be an object with an \"input\" key"
        }
    }
}

/// A request the endpoint API refuses, or an answer from it that cannot be read: says what is wrong.
public struct EndpointAPIError: Error, CustomStringConvertible, Sendable, Equatable {
    private enum Code: Sendable, Equatable {
        case invalidRequest
        case invalidAnswer
    }

    private let code: Code
    package let message: String

    /// A request body the API answers with 400.
    package static func invalidRequest(_ message: String) -> Self { Self(code: .invalidRequest, message: message) }
    /// An answer that does not have the API's shape.
    package static func invalidAnswer(_ message: String) -> Self { Self(code: .invalidAnswer, message: message) }

    package var isInvalidRequest: Bool { code == .invalidRequest }
    public var description: String { message }
}

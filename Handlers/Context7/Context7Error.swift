/// A context7 job that could not be answered: says what is wrong and what to do.
struct Context7Error: Error, CustomStringConvertible, Equatable {
    private enum Code: Equatable {
        case input
        case upstream
    }

    private let code: Code
    let description: String

    static func input(_ message: String) -> Self { Self(code: .input, description: message) }
    static func upstream(_ message: String) -> Self { Self(code: .upstream, description: message) }

    var isInputError: Bool { code == .input }
}

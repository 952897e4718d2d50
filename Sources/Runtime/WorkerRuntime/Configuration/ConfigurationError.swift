/// A bad environment value or flag: names the variable, the value and what is expected.
public struct ConfigurationError: Error, CustomStringConvertible, Sendable {
    private enum Code: Sendable {
        case invalidValue
        case invalidURL
    }

    private let code: Code
    package let variable: String
    package let value: String
    package let expected: String

    public static func invalidValue(_ variable: String, _ value: String, expected: String) -> Self {
        Self(code: .invalidValue, variable: variable, value: value, expected: expected)
    }

    static func invalidURL(_ variable: String, _ value: String, expected: String) -> Self {
        Self(code: .invalidURL, variable: variable, value: value, expected: expected)
    }

    public var description: String {
        switch code {
        case .invalidValue:
            return "\(variable)='\(value)' is not valid: expected \(expected). Fix or unset \(variable)."
        case .invalidURL:
            return "\(variable)='\(value)' is not a usable URL: \(expected). Fix or unset \(variable)."
        }
    }
}

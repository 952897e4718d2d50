/// The error of parsing or serializing JSON, naming what was wrong and where.
public struct JSONError: Error, CustomStringConvertible, Sendable {
    public let description: String
    package init(_ description: String) { self.description = description }
}

/// One RESP reply, as Redis sends it (RESP2: what `HELLO`-less connections speak).
public enum RedisValue: Sendable, Equatable {
    /// A status reply (`+OK`).
    case status(String)
    /// An error reply (`-ERR ...`): inside a pipeline, where it answers one command of many.
    case error(String)
    case integer(Int64)
    /// A bulk string, as the bytes Redis stored.
    case bulk([UInt8])
    /// A nil bulk string or nil array (a missing key).
    case null
    case array([RedisValue])

    /// A bulk string or status as text (UTF-8, invalid bytes replaced); nil for other replies.
    public var string: String? {
        switch self {
        case .bulk(let bytes): return String(decoding: bytes, as: UTF8.self)
        case .status(let text): return text
        default: return nil
        }
    }

    public var integer: Int64? {
        if case .integer(let value) = self { return value }
        return nil
    }

    public var isNull: Bool { self == .null }
}

/// One argument of a command: text or raw bytes, as Redis takes both.
public struct RedisArgument: Sendable, ExpressibleByStringLiteral, ExpressibleByIntegerLiteral {
    package let bytes: [UInt8]

    public init(_ text: String) { bytes = Array(text.utf8) }
    public init(bytes: [UInt8]) { self.bytes = bytes }
    public init(_ number: Int) { bytes = Array(String(number).utf8) }
    public init(stringLiteral value: String) { self.init(value) }
    public init(integerLiteral value: Int) { self.init(value) }
}

/// A command: its name and arguments (`["SET", "key", "value"]`).
public typealias RedisCommand = [RedisArgument]

extension Array where Element == RedisArgument {
    /// The command's name, for errors (never its arguments, which may be secrets or large).
    package var commandName: String {
        guard let first else { return "(empty command)" }
        return String(decoding: first.bytes.prefix(32), as: UTF8.self).uppercased()
    }
}

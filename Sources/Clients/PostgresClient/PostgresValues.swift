import WorkerJSON

/// A value that can be a query parameter, sent in PostgreSQL's text format (nil is NULL).
/// Values only ever travel as parameters: SQL text is never built from them.
public protocol PostgresBindable: Sendable {
    var postgresText: String? { get }
}

extension String: PostgresBindable { public var postgresText: String? { self } }
extension Int: PostgresBindable { public var postgresText: String? { String(self) } }
extension Int64: PostgresBindable { public var postgresText: String? { String(self) } }
extension Int32: PostgresBindable { public var postgresText: String? { String(self) } }
extension Double: PostgresBindable {
    public var postgresText: String? {
        if isNaN { return "NaN" }
        if isInfinite { return self > 0 ? "Infinity" : "-Infinity" }
        return String(self)
    }
}
extension Bool: PostgresBindable { public var postgresText: String? { self ? "t" : "f" } }
extension JSONValue: PostgresBindable { public var postgresText: String? { (try? jsonString()) ?? "null" } }
extension Optional: PostgresBindable where Wrapped: PostgresBindable {
    public var postgresText: String? { self?.postgresText }
}
/// `bytea`, as `\x` and hex digits.
extension Array: PostgresBindable where Element == UInt8 {
    public var postgresText: String? {
        let hex = Array<UInt8>("0123456789abcdef".utf8)
        var out: [UInt8] = [UInt8(ascii: "\\"), UInt8(ascii: "x")]
        out.reserveCapacity(2 + count * 2)
        for byte in self {
            out.append(hex[Int(byte >> 4)])
            out.append(hex[Int(byte & 15)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}

/// A value a column can be read as, from PostgreSQL's text format.
public protocol PostgresDecodable: Sendable {
    /// nil when `text` is not one; `text` is nil for SQL NULL.
    static func decode(postgresText text: String?) -> Self?
    /// For errors: what was expected.
    static var postgresDescription: String { get }
}

extension String: PostgresDecodable {
    public static func decode(postgresText text: String?) -> String? { text }
    public static var postgresDescription: String { "text" }
}
extension Int: PostgresDecodable {
    public static func decode(postgresText text: String?) -> Int? { text.flatMap { Int($0) } }
    public static var postgresDescription: String { "a whole number" }
}
extension Int64: PostgresDecodable {
    public static func decode(postgresText text: String?) -> Int64? { text.flatMap { Int64($0) } }
    public static var postgresDescription: String { "a whole number" }
}
extension Double: PostgresDecodable {
    public static func decode(postgresText text: String?) -> Double? {
        switch text {
        case "NaN": return .nan
        case "Infinity": return .infinity
        case "-Infinity": return -.infinity
        default: return text.flatMap { Double($0) }
        }
    }
    public static var postgresDescription: String { "a number" }
}
extension Bool: PostgresDecodable {
    public static func decode(postgresText text: String?) -> Bool? {
        switch text {
        case "t": return true
        case "f": return false
        default: return nil
        }
    }
    public static var postgresDescription: String { "a boolean" }
}
extension JSONValue: PostgresDecodable {
    public static func decode(postgresText text: String?) -> JSONValue? { text.flatMap { try? JSONValue.parse($0) } }
    public static var postgresDescription: String { "json" }
}
extension Array: PostgresDecodable where Element == UInt8 {
    public static func decode(postgresText text: String?) -> [UInt8]? {
        guard let text, text.hasPrefix("\\x") else { return nil }
        let digits = Array<UInt8>(text.utf8.dropFirst(2))
        guard digits.count % 2 == 0 else { return nil }
        func value(_ digit: UInt8) -> UInt8? {
            switch digit {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): return digit - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): return digit - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): return digit - UInt8(ascii: "A") + 10
            default: return nil
            }
        }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(digits.count / 2)
        var index = 0
        while index < digits.count {
            guard let high = value(digits[index]), let low = value(digits[index + 1]) else { return nil }
            bytes.append(high << 4 | low)
            index += 2
        }
        return bytes
    }
    public static var postgresDescription: String { "bytea" }
}
extension Optional: PostgresDecodable where Wrapped: PostgresDecodable {
    public static func decode(postgresText text: String?) -> Wrapped?? {
        guard let text else { return .some(nil) }
        return Wrapped.decode(postgresText: text).map { .some($0) }
    }
    public static var postgresDescription: String { Wrapped.postgresDescription + " or NULL" }
}

/// The rows a statement returned, in PostgreSQL's text format.
public struct PostgresRows: Sendable, Sequence {
    public let columns: [String]
    let values: [[String?]]
    /// `PQcmdTuples`: rows inserted, updated or deleted.
    public let affectedRows: Int
    /// The statement's SQL (described in errors by its first words).
    let sql: String

    init(columns: [String], values: [[String?]], affectedRows: Int, sql: String) {
        self.columns = columns
        self.values = values
        self.affectedRows = affectedRows
        self.sql = sql
    }

    var statement: String { PostgresConnection.describe(sql) }

    public var count: Int { values.count }

    public func makeIterator() -> AnyIterator<PostgresRow> {
        var index = 0
        return AnyIterator {
            guard index < values.count else { return nil }
            defer { index += 1 }
            return PostgresRow(rows: self, index: index)
        }
    }

    public subscript(index: Int) -> PostgresRow { PostgresRow(rows: self, index: index) }

    public var first: PostgresRow? { values.isEmpty ? nil : self[0] }
}

/// One row: columns read by name, as the type asked for; a wrong or NULL value is an error that
/// names the column and the row.
public struct PostgresRow: Sendable {
    let rows: PostgresRows
    let index: Int

    public func decode<T: PostgresDecodable>(_ column: String, as type: T.Type = T.self) throws(PostgresError) -> T {
        guard let position = rows.columns.firstIndex(of: column) else {
            throw .decode(rows.statement, "there is no column \"\(column)\" (the columns are \(rows.columns.joined(separator: ", ")))")
        }
        let text = rows.values[index][position]
        guard let value = T.decode(postgresText: text) else {
            let got = text.map { "'\($0.prefix(60))'" } ?? "NULL"
            throw .decode(rows.statement, "column \"\(column)\" of row \(index) is \(got), not \(T.postgresDescription)")
        }
        return value
    }
}

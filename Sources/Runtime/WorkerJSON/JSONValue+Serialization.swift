extension JSONValue {
    /// Parses UTF-8 JSON text (RFC 8259, strictly); the error says where it is malformed.
    /// Inlinable so that it is specialized for the caller's collection: unspecialized, every call
    /// instantiated generic metadata for it at run time (about 14k instructions of an MCP call).
    @inlinable
    public static func parse(_ bytes: some Collection<UInt8>) throws(JSONError) -> JSONValue {
        if let result = bytes.withContiguousStorageIfAvailable(parseContiguous) { return try result.get() }
        return try Array(bytes).withUnsafeBufferPointer(parseContiguous).get()
    }

    @usableFromInline
    static func parseContiguous(_ buffer: UnsafeBufferPointer<UInt8>) -> Result<JSONValue, JSONError> {
        Result { () throws(JSONError) -> JSONValue in try JSONParser.parse(buffer) }
    }

    public static func parse(_ text: String) throws(JSONError) -> JSONValue {
        try parse(Array(text.utf8))
    }

    /// The value's canonical text, as UTF-8: no whitespace, object keys sorted by their UTF-8
    /// bytes, and numbers normalised, so values that compare equal (`==`) give identical bytes
    /// whatever text they were parsed from. That makes the bytes usable as cache keys and as the
    /// input of a hash. The rules:
    /// - a number with an integral value that fits in 64 bits is written as an integer, whatever
    ///   its source form: `1`, `1.0`, `1e0` and `10E-1` are all `1`, and `-0.0` is `0`;
    /// - any other number is written as the shortest text that reads back to the same double
    ///   (`0.1`, `1.5e+300`);
    /// - strings are escaped minimally (`\"`, `\\`, `\n`, `\r`, `\t`, `\u00XX` for other control
    ///   characters); everything else, `/` and non-ASCII included, is written as it is. Strings are
    ///   compared as their UTF-8 bytes here: precomposed and decomposed spellings stay distinct.
    /// Throws for NaN and infinities, which JSON cannot carry.
    public func serialized() throws(JSONError) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(64)
        try Self.write(self, into: &out)
        return out
    }

    /// The number of bytes `serialized()` produces, counted without producing them (a size limit
    /// checked on every result should not cost a copy of it). Throws where `serialized()` does.
    public func serializedCount() throws(JSONError) -> Int {
        switch self {
        case .null: return 4
        case .bool(let bool): return bool ? 4 : 5
        case .integer(let int): return Self.digitCount(int)
        case .number(let double):
            guard double.isFinite else { throw JSONError("\(double) cannot be represented in JSON") }
            if let exact = Int64(exactly: double) { return Self.digitCount(exact) }
            return double.description.utf8.count
        case .string(let string): return Self.serializedCount(string)
        case .array(let array):
            var count = 2 + max(0, array.count - 1)
            for element in array { count += try element.serializedCount() }
            return count
        case .object(let object):
            var count = 2 + max(0, object.count - 1)
            for (key, value) in object { count += Self.serializedCount(key) + 1 + (try value.serializedCount()) }
            return count
        }
    }

    private static func digitCount(_ value: Int64) -> Int {
        var count = value < 0 ? 2 : 1
        var rest = value.magnitude / 10
        while rest > 0 {
            count += 1
            rest /= 10
        }
        return count
    }

    private static func serializedCount(_ string: String) -> Int {
        var string = string
        return string.withUTF8 { bytes in
            var count = 2 + bytes.count
            for byte in bytes where byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") {
                switch byte {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), 0x0A, 0x0D, 0x09: count += 1
                default: count += 5
                }
            }
            return count
        }
    }

    /// Appends `serialized()` to `out`, for a writer that builds a larger body around the value.
    package func serialize(into out: inout [UInt8]) throws(JSONError) {
        try Self.write(self, into: &out)
    }

    /// Appends a string in its canonical JSON form.
    package static func serialize(string: String, into out: inout [UInt8]) {
        writeString(string, into: &out)
    }

    /// Appends an integer in its canonical JSON form.
    package static func serialize(integer: Int64, into out: inout [UInt8]) {
        writeInteger(integer, into: &out)
    }

    /// `serialized()` as a String.
    public func jsonString() throws(JSONError) -> String {
        String(decoding: try serialized(), as: UTF8.self)
    }

    private static func write(_ value: JSONValue, into out: inout [UInt8]) throws(JSONError) {
        switch value {
        case .null: out.append(static: "null")
        case .bool(let bool): out.append(static: bool ? "true" : "false")
        case .integer(let int): writeInteger(int, into: &out)
        case .number(let double):
            guard double.isFinite else { throw JSONError("\(double) cannot be represented in JSON") }
            if let exact = Int64(exactly: double) {
                writeInteger(exact, into: &out)
            } else {
                out.append(contentsOf: double.description.utf8)
            }
        case .string(let string): writeString(string, into: &out)
        case .array(let array):
            out.append(UInt8(ascii: "["))
            for (index, element) in array.enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                try write(element, into: &out)
            }
            out.append(UInt8(ascii: "]"))
        case .object(let object) where object.count <= 2:
            // Up to two members are put in order without sorting a list (most results are
            // {"output": …}).
            var members = object.makeIterator()
            var (first, second) = (members.next(), members.next())
            if let a = first, let b = second, b.key.utf8.lexicographicallyPrecedes(a.key.utf8) { swap(&first, &second) }
            out.append(UInt8(ascii: "{"))
            if let first { try writeMember(first, into: &out) }
            if let second {
                out.append(UInt8(ascii: ","))
                try writeMember(second, into: &out)
            }
            out.append(UInt8(ascii: "}"))
        case .object(let object):
            out.append(UInt8(ascii: "{"))
            // The pairs sorted once (no lookup per key afterwards); keys are unique, so the order is total.
            let pairs = object.sorted { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }
            for (index, pair) in pairs.enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                try writeMember(pair, into: &out)
            }
            out.append(UInt8(ascii: "}"))
        }
    }

    /// `"key":value`.
    private static func writeMember(_ member: (key: String, value: JSONValue), into out: inout [UInt8]) throws(JSONError) {
        writeString(member.key, into: &out)
        out.append(UInt8(ascii: ":"))
        try write(member.value, into: &out)
    }

    /// Decimal digits straight into the buffer (no intermediate String).
    private static func writeInteger(_ value: Int64, into out: inout [UInt8]) {
        if value < 0 { out.append(UInt8(ascii: "-")) }
        var magnitude = value.magnitude
        guard magnitude > 0 else {
            out.append(UInt8(ascii: "0"))
            return
        }
        let start = out.count
        while magnitude > 0 {
            out.append(UInt8(ascii: "0") + UInt8(magnitude % 10))
            magnitude /= 10
        }
        out[start...].reverse()
    }

    private static func writeString(_ string: String, into out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        var string = string
        string.withUTF8 { bytes in
            // (No reserveCapacity here: it grows the array to the exact size asked, so a body
            // written string by string would be copied again for every string.)
            // Runs that need no escape are copied whole; most strings are one run.
            var runStart = 0
            var index = 0
            let count = bytes.count
            while index < count {
                let byte = bytes[index]
                guard byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") else {
                    index += 1
                    continue
                }
                if index > runStart { out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[runStart..<index])) }
                index += 1
                runStart = index
                out.append(UInt8(ascii: "\\"))
                switch byte {
                case UInt8(ascii: "\""): out.append(UInt8(ascii: "\""))
                case UInt8(ascii: "\\"): out.append(UInt8(ascii: "\\"))
                case 0x0A: out.append(UInt8(ascii: "n"))
                case 0x0D: out.append(UInt8(ascii: "r"))
                case 0x09: out.append(UInt8(ascii: "t"))
                default:
                    out.append(UInt8(ascii: "u"))
                    out.append(UInt8(ascii: "0"))
                    out.append(UInt8(ascii: "0"))
                    out.append(hexDigit(byte >> 4))
                    out.append(hexDigit(byte & 0xF))
                }
            }
            if count > runStart { out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[runStart..<count])) }
        }
        out.append(UInt8(ascii: "\""))
    }

    @inline(__always)
    private static func hexDigit(_ value: UInt8) -> UInt8 {
        value < 10 ? UInt8(ascii: "0") + value : UInt8(ascii: "a") + value - 10
    }
}

extension [UInt8] {
    /// Appends a literal's UTF-8 bytes in one copy (a `String`'s UTF-8 view is appended byte by
    /// byte).
    @inlinable
    package mutating func append(static text: StaticString) {
        append(contentsOf: UnsafeBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
    }
}

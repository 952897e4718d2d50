/// A media type as `Content-Type` carries it, or a media range as `Accept` lists them (RFC 9110
/// sections 8.3 and 12.5.1): `type/subtype` lower-cased, and the range's weight (`q`, 1 when
/// absent). Other parameters are not kept: nothing here decides by them.
package struct MediaRange: Sendable, Equatable {
    package let type: String
    package let subtype: String
    /// 0 (not acceptable) to 1.
    package let quality: Double

    /// One media type or range (`application/json; charset=utf-8`, `*/*;q=0.1`); nil when it is
    /// not `type/subtype` or its `q` is not a weight.
    package init?(_ text: some StringProtocol) {
        var parts = Self.split(text, on: ";")[...]
        guard let essence = parts.popFirst() else { return nil }
        let lowered = essence.lowercased()
        guard let slash = lowered.firstIndex(of: "/") else { return nil }
        let type = lowered[..<slash]
        let subtype = lowered[lowered.index(after: slash)...]
        guard Self.isToken(type), Self.isToken(subtype) else { return nil }
        var quality = 1.0
        for parameter in parts {
            guard let equals = parameter.firstIndex(of: "=") else { continue }
            guard parameter[..<equals].trimmingSpaces.lowercased() == "q" else { continue }
            guard let weight = Self.weight(parameter[parameter.index(after: equals)...].trimmingSpaces) else { return nil }
            quality = weight
        }
        self.type = String(type)
        self.subtype = String(subtype)
        self.quality = quality
    }

    /// The ranges of an `Accept` value (or of several, joined with commas); malformed ones are left out.
    package static func list(_ header: some StringProtocol) -> [MediaRange] {
        Self.split(header, on: ",").compactMap { $0.isEmpty ? nil : MediaRange($0) }
    }

    /// Whether a `Content-Type` value is JSON: what every client of this server sends
    /// (`application/json`, any case, with or without parameters) is recognized from its bytes
    /// alone; anything else is parsed. Runs on every request with a body.
    package static func isJSON(contentType value: String) -> Bool {
        var value = value
        let plain = value.withUTF8 { bytes -> Bool? in
            let name: StaticString = "application/json"
            guard bytes.count >= name.utf8CodeUnitCount else { return nil }
            for index in 0..<name.utf8CodeUnitCount {
                let byte = bytes[index]
                let lower = byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") ? byte | 0x20 : byte
                guard lower == name.utf8Start[index] else { return nil }
            }
            guard bytes.count > name.utf8CodeUnitCount else { return true }
            let next = bytes[name.utf8CodeUnitCount]
            return next == UInt8(ascii: ";") || next == UInt8(ascii: " ") ? true : nil
        }
        return plain ?? (MediaRange(value)?.isJSON == true)
    }

    /// `application/json`, or any `application/…+json` type.
    package var isJSON: Bool {
        type == "application" && (subtype == "json" || subtype.hasSuffix("+json"))
    }

    /// How specifically this range names `type/subtype`: 3 exactly, 2 as `type/*`, 1 as `*/*`,
    /// nil when it does not cover it.
    func specificity(type: String, subtype: String) -> Int? {
        if self.type == "*" { return self.subtype == "*" ? 1 : nil }
        guard self.type == type else { return nil }
        if self.subtype == "*" { return 2 }
        return self.subtype == subtype ? 3 : nil
    }

    /// Whether `ranges` accept `type/subtype` (lower-case): the most specific range that covers
    /// it decides, so `application/json;q=0, */*` refuses JSON and `*/*;q=0, application/json`
    /// takes it. A weight of 0 means "not acceptable".
    package static func accepts(_ ranges: [MediaRange], type: String, subtype: String) -> Bool {
        var best: (specificity: Int, quality: Double)?
        for range in ranges {
            guard let specificity = range.specificity(type: type, subtype: subtype) else { continue }
            if let current = best, current.specificity > specificity { continue }
            if let current = best, current.specificity == specificity, current.quality >= range.quality { continue }
            best = (specificity, range.quality)
        }
        return (best?.quality ?? 0) > 0
    }

    /// `text` cut at each `separator` outside double quotes (a quoted parameter value may hold
    /// commas and semicolons), each piece trimmed of spaces and tabs.
    static func split(_ text: some StringProtocol, on separator: Character) -> [Substring] {
        let text = Substring(text)
        var pieces: [Substring] = []
        var start = text.startIndex
        var quoted = false
        var escaped = false
        var index = text.startIndex
        while index < text.endIndex {
            let character = text[index]
            if escaped {
                escaped = false
            } else if quoted, character == "\\" {
                escaped = true
            } else if character == "\"" {
                quoted.toggle()
            } else if !quoted, character == separator {
                pieces.append(text[start..<index].trimmingSpaces)
                start = text.index(after: index)
            }
            index = text.index(after: index)
        }
        pieces.append(text[start...].trimmingSpaces)
        return pieces
    }

    /// A token of RFC 9110 (section 5.6.2), or `*`.
    private static func isToken(_ text: Substring) -> Bool {
        !text.isEmpty
            && text.utf8.allSatisfy { byte in
                switch byte {
                case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                    return true
                default:
                    return "!#$%&'*+-.^_`|~".utf8.contains(byte)
                }
            }
    }

    /// A weight (`0`, `0.5`, `1.000`, at most three decimals), as a number.
    private static func weight(_ text: Substring) -> Double? {
        let parts = text.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
        guard let whole = parts.first, whole == "0" || whole == "1" else { return nil }
        let decimals = parts.count == 2 ? parts[1] : ""
        guard decimals.count <= 3, decimals.allSatisfy({ $0 >= "0" && $0 <= "9" }) else { return nil }
        guard let value = Double(text), value <= 1 else { return nil }
        return value
    }
}

extension Substring {
    /// Without leading and trailing spaces and tabs (HTTP's optional whitespace).
    fileprivate var trimmingSpaces: Substring {
        var result = self
        while let first = result.first, first == " " || first == "\t" { result.removeFirst() }
        while let last = result.last, last == " " || last == "\t" { result.removeLast() }
        return result
    }
}

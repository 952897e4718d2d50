#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Reads a handler's settings from the environment (a dictionary, so tests build one), each value
/// checked as it is read: a bad one is a `ConfigurationError` naming the variable, the value and
/// what was expected. Unset and empty variables read as nil; surrounding spaces are dropped.
package struct EnvironmentReader: Sendable {
    package let environment: [String: String]

    package init(_ environment: [String: String]) {
        self.environment = environment
    }

    package func string(_ name: String) -> String? {
        guard let raw = environment[name] else { return nil }
        let value = trimmed(raw)
        return value.isEmpty ? nil : value
    }

    package func number(_ name: String, in range: ClosedRange<Double>, expected: String? = nil) throws(ConfigurationError) -> Double? {
        guard let raw = string(name) else { return nil }
        guard let number = Double(raw), range.contains(number) else {
            throw .invalidValue(name, raw, expected: expected ?? "a number from \(range.lowerBound) to \(range.upperBound)")
        }
        return number
    }

    /// Seconds, fractions allowed.
    package func seconds(_ name: String, in range: ClosedRange<Double>, expected: String? = nil) throws(ConfigurationError) -> Duration? {
        try number(name, in: range, expected: expected ?? "seconds from \(range.lowerBound) to \(range.upperBound)")
            .map { .milliseconds(Int64(($0 * 1000).rounded())) }
    }

    /// Seconds over zero, at most a year: a duration past Int64 milliseconds would trap instead
    /// of being refused. The limits and timeouts of the runtime and its features read this way.
    package func positiveSeconds(_ name: String) throws(ConfigurationError) -> Duration? {
        try seconds(name, in: 0.001...31_536_000, expected: "a positive number of seconds, at most 31536000 (a year)")
    }

    package func whole(_ name: String, in range: ClosedRange<Int>) throws(ConfigurationError) -> Int? {
        guard let raw = string(name) else { return nil }
        guard let number = Int(raw), range.contains(number) else {
            throw .invalidValue(name, raw, expected: "a whole number from \(range.lowerBound) to \(range.upperBound)")
        }
        return number
    }

    package func flag(_ name: String) throws(ConfigurationError) -> Bool? {
        guard let raw = string(name) else { return nil }
        switch raw.lowercased() {
        case "1", "true", "yes", "on": return true
        case "0", "false", "no", "off": return false
        default: throw .invalidValue(name, raw, expected: "true or false")
        }
    }

    /// An http(s) URL with a host, returned without trailing slashes (paths are appended to it).
    /// `example` completes the error, e.g. `https://api.openai.com/v1`.
    package func baseURL(_ name: String, example: String) throws(ConfigurationError) -> String? {
        guard var url = string(name) else { return nil }
        try Self.checkHTTPURL(url, variable: name, original: url, example: example)
        while url.hasSuffix("/") { url.removeLast() }
        return url
    }

    /// Throws unless `url` parses as an http or https URL with a host.
    package static func checkHTTPURL(_ url: String, variable: String, original: String, example: String? = nil) throws(ConfigurationError) {
        let such = example.map { " such as \($0)" } ?? ""
        guard let parsed = URL(string: url), let scheme = parsed.scheme?.lowercased(), scheme == "http" || scheme == "https" else {
            throw .invalidURL(variable, original, expected: "expected an http:// or https:// URL\(such)")
        }
        guard let host = parsed.host, !host.isEmpty else {
            throw .invalidURL(variable, original, expected: "the URL has no host")
        }
        // Foundation's parser lets these through; curl then refuses every request made with them.
        guard !url.unicodeScalars.contains(where: { $0.properties.isWhitespace || $0.value < 0x20 || $0.value == 0x7F }) else {
            throw .invalidURL(variable, original, expected: "a URL without spaces or control characters")
        }
        if let port = parsed.port, !(0...65535).contains(port) {
            throw .invalidURL(variable, original, expected: "the port must be at most 65535")
        }
    }
}

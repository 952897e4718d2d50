/// A command-line flag a feature reads (`--local`, `--port 9000`), declared with the feature so
/// that the runtime knows it, lists it in `--help` and in the error for a mistyped flag, and
/// hands its value to the feature alone.
package struct FeatureFlag: Sendable, Equatable {
    /// Every spelling, the first one canonical (`["--port", "--rp_api_port"]`).
    package let names: [String]
    /// Whether a value follows (`--port 9000` or `--port=9000`).
    package let takesValue: Bool
    package let help: String

    package init(_ names: [String], takesValue: Bool = false, help: String) {
        precondition(!names.isEmpty && names.allSatisfy { $0.hasPrefix("--") }, "a flag is named --something")
        self.names = names
        self.takesValue = takesValue
        self.help = help
    }

    package var name: String { names[0] }
}

/// The feature flags found on the command line, by canonical name: a value, or nil for a flag
/// that takes none. The last occurrence wins, as ArgumentParser's options do.
package struct FeatureFlagValues: Sendable, Equatable {
    package var values: [String: String?] = [:]

    package init(_ values: [String: String?] = [:]) { self.values = values }

    package func isSet(_ name: String) -> Bool { values[name] != nil }

    /// The value of a flag that takes one; nil when absent.
    package func value(_ name: String) -> String? { values[name] ?? nil }

    /// A whole number in `range`, or an error naming the flag.
    package func whole(_ name: String, in range: ClosedRange<Int>, expected: String) throws(ConfigurationError) -> Int? {
        guard let raw = value(name) else { return nil }
        guard let number = Int(raw), range.contains(number) else { throw .invalidValue(name, raw, expected: expected) }
        return number
    }
}

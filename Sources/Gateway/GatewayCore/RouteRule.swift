import WorkerJSON

/// One rule of `routes[]`: when a job matches (every predicate given holds), the tiers it goes
/// to, the first preferred and the rest fallbacks. A rule without predicates is the default, and
/// only the last rule may be one.
package struct RouteRule: Sendable, Equatable {
    /// MCP tool names (as called on the gateway) this rule takes.
    package var tools: [String] = []
    package var predicates: [JobPredicate] = []
    package var minInputBytes: Int?
    package var maxInputBytes: Int?
    package var tiers: [String]

    package init(tiers: [String]) {
        self.tiers = tiers
    }

    package var isDefault: Bool { tools.isEmpty && predicates.isEmpty && minInputBytes == nil && maxInputBytes == nil }

    /// Whether a job (its JSON, the tool it came through, its input's size) matches.
    package func matches(job: JSONValue, tool: String?, inputBytes: Int) -> Bool {
        if !tools.isEmpty {
            guard let tool, tools.contains(tool) else { return false }
        }
        if let minInputBytes, inputBytes < minInputBytes { return false }
        if let maxInputBytes, inputBytes > maxInputBytes { return false }
        return predicates.allSatisfy { $0.holds(in: job) }
    }
}

/// A test of one value of the job (`{"path": "input.task", "equals": "embed"}`).
package struct JobPredicate: Sendable, Equatable {
    package enum Test: Sendable, Equatable {
        case equals(JSONValue)
        case oneOf([JSONValue])
        case exists(Bool)
        case atLeast(Double)
        case atMost(Double)
        /// A string value containing this text.
        case contains(String)
    }

    package var path: JSONPath
    package var test: Test

    package func holds(in job: JSONValue) -> Bool {
        let value = path.value(in: job)
        switch test {
        case .exists(let wanted): return (value != nil && value != .null) == wanted
        case .equals(let expected): return value.map { Self.same($0, expected) } ?? false
        case .oneOf(let values): return value.map { found in values.contains { Self.same(found, $0) } } ?? false
        case .atLeast(let bound): return value?.doubleValue.map { $0 >= bound } ?? false
        case .atMost(let bound): return value?.doubleValue.map { $0 <= bound } ?? false
        case .contains(let text): return value?.stringValue?.contains(text) ?? false
        }
    }

    /// Equal as JSON: 1 and 1.0 are the same number.
    static func same(_ a: JSONValue, _ b: JSONValue) -> Bool {
        if let x = a.doubleValue, let y = b.doubleValue { return x == y }
        return a == b
    }
}

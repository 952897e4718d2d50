import WorkerJSON

/// Maps a job to the tiers it may run on, in order: its explicit `input.tier` when it names
/// one, else the first rule it matches (the last rule matches every job).
package struct TierRouter: Sendable {
    package let rules: [RouteRule]
    package let tiers: Set<String>
    /// Whether a rule tests the input's size (else callers need not measure it).
    package let usesInputSize: Bool

    package init(configuration: GatewayConfiguration) {
        rules = configuration.routes
        tiers = Set(configuration.tiers)
        usesInputSize = rules.contains { $0.minInputBytes != nil || $0.maxInputBytes != nil }
    }

    package enum Failure: Error, Sendable, Equatable, CustomStringConvertible {
        /// `input.tier` names no tier of this gateway.
        case unknownTier(String, known: [String])
        /// `input.tier` is not a string.
        case badTier

        package var description: String {
            switch self {
            case .unknownTier(let tier, let known): "input.tier \"\(tier)\" is not a tier of this gateway (tiers: \(known.joined(separator: ", ")))"
            case .badTier: "input.tier must be a string naming a tier"
            }
        }
    }

    /// The tiers for `job` (`{"input": …}`), reached through `tool` when it came as an MCP call;
    /// `inputBytes` is the size of its input as sent.
    package func tiers(for job: JSONValue, tool: String? = nil, inputBytes: Int) throws(Failure) -> [String] {
        if let explicit = job["input"]?["tier"] {
            guard let tier = explicit.stringValue else { throw .badTier }
            guard tiers.contains(tier) else { throw .unknownTier(tier, known: tiers.sorted()) }
            return [tier]
        }
        for rule in rules where rule.matches(job: job, tool: tool, inputBytes: inputBytes) { return rule.tiers }
        // Only when the configuration has no default rule, which it refuses.
        return rules.last?.tiers ?? []
    }
}

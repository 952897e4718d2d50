/// What a worker process does, decided from the environment and flags alone (docs/protocol.md,
/// section 1.1). The core knows the queue worker and one-shot runs; features bring the rest (the
/// endpoint server's HTTP modes, MCP over stdio, a fleet's modes).
package enum WorkerMode: Sendable, Equatable {
    /// The production queue worker against the platform's worker API.
    case queue(WorkerConfiguration.PlatformEndpoints)
    /// One job from `--test-input` (or `./test_input.json` when nil), then exit.
    case oneShot(testInput: String?)
    /// A mode a feature serves.
    case feature(FeatureMode)

    /// Whether the endpoint API is served over HTTP (`--local`, load balancing).
    package var isServer: Bool {
        if case .feature(let mode) = self { return mode.servesHTTP }
        return false
    }

    /// The feature mode's settings when they are of type `T`.
    package func settings<T>(as type: T.Type) -> T? {
        if case .feature(let mode) = self { return mode.settings as? T }
        return nil
    }

    /// `--test-input` wins; then the strongest feature claim, where a flag beats the platform's
    /// queue variables and those beat a claim from the environment (`PORT`); else a one-shot run
    /// of `./test_input.json`. Two claims of one strength: the first feature's.
    package static func resolve(testInput: String?, configuration: WorkerConfiguration, claims: [ModeClaim]) -> WorkerMode {
        if let input = testInput { return .oneShot(testInput: input) }
        let strongest = claims.enumerated().max { a, b in
            a.element.strength < b.element.strength || (a.element.strength == b.element.strength && a.offset > b.offset)
        }?.element
        if let strongest, strongest.strength >= .flag { return .feature(strongest.mode) }
        if let platform = configuration.platform { return .queue(platform) }
        if let strongest { return .feature(strongest.mode) }
        return .oneShot(testInput: nil)
    }
}

/// A mode a feature serves: named for logs and errors; its settings are the feature's.
package struct FeatureMode: Sendable, Equatable, CustomStringConvertible {
    package let name: String
    /// Whether the mode serves the endpoint API over HTTP (then `--host` applies, for example).
    package let servesHTTP: Bool
    package let settings: any Sendable

    package init(name: String, servesHTTP: Bool = false, settings: any Sendable = ()) {
        self.name = name
        self.servesHTTP = servesHTTP
        self.settings = settings
    }

    package static func == (a: FeatureMode, b: FeatureMode) -> Bool { a.name == b.name }
    package var description: String { name }
}

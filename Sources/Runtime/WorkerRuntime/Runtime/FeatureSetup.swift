/// What a feature reads at start-up, once, to build its settings: the environment, its own flags
/// and the core's configuration (the worker id, the log level).
package struct FeatureSetup: Sendable {
    package let environment: EnvironmentReader
    package let flags: FeatureFlagValues
    package let core: WorkerConfiguration
    package let options: WorkerOptions

    package init(
        environment: [String: String], flags: FeatureFlagValues = FeatureFlagValues(), core: WorkerConfiguration,
        options: WorkerOptions = WorkerOptions()
    ) {
        self.environment = EnvironmentReader(environment)
        self.flags = flags
        self.core = core
        self.options = options
    }
}

/// What a feature made of its setup: its settings (found again in `WorkerContext.settings`) and
/// the mode it asks to serve, if any.
package struct FeatureConfiguration: Sendable {
    package var settings: (any Sendable)?
    package var mode: ModeClaim?
    /// Runs once the mode is chosen: refuses flags of this feature that the chosen mode would
    /// ignore (`--host` when the worker ends up taking queue jobs).
    package var check: (@Sendable (WorkerMode) throws(ConfigurationError) -> Void)?

    package init(
        settings: (any Sendable)? = nil, mode: ModeClaim? = nil,
        check: (@Sendable (WorkerMode) throws(ConfigurationError) -> Void)? = nil
    ) {
        self.settings = settings
        self.mode = mode
        self.check = check
    }
}

/// A mode a feature would serve, and how strongly it asks.
package struct ModeClaim: Sendable {
    package enum Strength: Int, Sendable, Comparable {
        /// From the environment (`PORT`): the platform's queue variables win over it.
        case environment = 1
        /// From a flag (`--local`): wins over the platform's queue.
        case flag = 3
        /// From a flag that excludes every other mode (`--mcp`: standard output is the protocol's).
        case exclusiveFlag = 4

        package static func < (a: Strength, b: Strength) -> Bool { a.rawValue < b.rawValue }
    }

    package let mode: FeatureMode
    package let strength: Strength

    package init(_ mode: FeatureMode, strength: Strength) {
        self.mode = mode
        self.strength = strength
    }
}

/// Every feature's settings, by type: one value per type.
package struct FeatureSettings: Sendable {
    private var values: [ObjectIdentifier: any Sendable] = [:]

    package init() {}

    package init(_ values: [any Sendable]) {
        for value in values { self.values[ObjectIdentifier(type(of: value))] = value }
    }

    package subscript<T: Sendable>(_ type: T.Type) -> T? {
        get { values[ObjectIdentifier(type)] as? T }
        set { values[ObjectIdentifier(type)] = newValue }
    }
}

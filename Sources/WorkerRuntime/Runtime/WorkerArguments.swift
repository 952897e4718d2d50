import ArgumentParser

/// The runtime's command-line flags, with runpod-python's spellings accepted too.
/// Flags it does not know are left for the handler's own code.
public struct WorkerArguments: ParsableArguments, Sendable {
    @Option(
        name: [.customLong("test-input"), .customLong("test_input")],
        help: "Run one job with this JSON ({\"input\": …}) and exit; 0 on success, 1 on error.")
    public var testInput: String?

    @Option(
        name: [.customLong("log-level"), .customLong("rp_log_level")],
        help: "TRACE, DEBUG, INFO, WARN or ERROR (overrides RUNPOD_LOG_LEVEL).")
    public var logLevel: String?

    @Argument(parsing: .allUnrecognized, help: .hidden)
    public var unrecognized: [String] = []

    public init() {}
}

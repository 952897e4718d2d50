import ArgumentParser

/// The core's command-line flags, with runpod-python's spellings accepted too. Features declare
/// their own (`WorkerFeature.flags`: `--local`, `--mcp`, …). Flags nobody declares are an error
/// (`UnknownArguments`), except those the handler declares as its own
/// (`WorkerOptions.handlerFlags`), which are left for the handler's code.
package struct WorkerArguments: ParsableArguments, Sendable {
    @Option(
        name: [.customLong("test-input"), .customLong("test_input")],
        help: "Run one job with this JSON ({\"input\": …}) and exit; 0 on success, 1 on error.")
    package var testInput: String?

    @Option(
        name: [.customLong("log-level"), .customLong("rp_log_level")],
        help: "TRACE, DEBUG, INFO, WARN or ERROR (overrides RUNPOD_LOG_LEVEL).")
    package var logLevel: String?

    @Option(name: [.customLong("concurrency"), .customLong("rp_api_concurrency")], help: "Jobs run at once (overrides WORKER_CONCURRENCY).")
    package var concurrency: Int?

    @Flag(help: "Print the tools this worker offers agents (MCP's tools/list) as JSON and exit.")
    var listTools = false

    @Flag(
        name: .customLong("rp_debugger"),
        help: "Accepted for runpod-python's command lines; this runtime adds no rp_debugger output (a warning says so).")
    var rpDebugger = false

    @Argument(parsing: .allUnrecognized, help: .hidden)
    var unrecognized: [String] = []

    package init() {}

    /// Every spelling the core accepts, for the error that lists them (a test keeps it true).
    static let knownFlags = ["--test-input", "--log-level", "--concurrency", "--list-tools", "--help"]
    /// runpod-python's spellings of the same flags.
    static let runpodFlags = ["--test_input", "--rp_log_level", "--rp_api_concurrency", "--rp_debugger"]
}

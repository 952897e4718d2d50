import ArgumentParser

/// The runtime's command-line flags, with runpod-python's spellings accepted too.
/// Flags it does not know are an error (`UnknownArguments`), except those the handler declares
/// as its own (`WorkerOptions.handlerFlags`), which are left for the handler's code.
package struct WorkerArguments: ParsableArguments, Sendable {
    @Option(
        name: [.customLong("test-input"), .customLong("test_input")],
        help: "Run one job with this JSON ({\"input\": …}) and exit; 0 on success, 1 on error.")
    package var testInput: String?

    @Option(
        name: [.customLong("log-level"), .customLong("rp_log_level")],
        help: "TRACE, DEBUG, INFO, WARN or ERROR (overrides RUNPOD_LOG_LEVEL).")
    package var logLevel: String?

    @Flag(
        name: [.customLong("local"), .customLong("rp_serve_api")],
        help: "Serve RunPod's endpoint API (/run, /runsync, /status, /stream, …) for this handler.")
    package var local = false

    @Option(name: [.customLong("host"), .customLong("rp_api_host")], help: "Address to serve on (default 127.0.0.1).")
    package var host: String?

    @Option(name: [.customLong("port"), .customLong("rp_api_port")], help: "Port to serve on (default 8000).")
    package var port: Int?

    @Option(name: [.customLong("concurrency"), .customLong("rp_api_concurrency")], help: "Jobs run at once (overrides WORKER_CONCURRENCY).")
    package var concurrency: Int?

    @Flag(help: "Speak MCP (the Model Context Protocol) over standard input and output, for desktop agents; logs go to standard error.")
    package var mcp = false

    @Flag(help: "Print the tools this worker offers agents (MCP's tools/list) as JSON and exit.")
    package var listTools = false

    @Flag(help: "Allow serving on a non-loopback address without RUNPOD_API_KEY.")
    package var allowUnauthenticated = false

    @Flag(
        name: .customLong("rp_debugger"),
        help: "Accepted for runpod-python's command lines; this runtime adds no rp_debugger output (a warning says so).")
    package var rpDebugger = false

    @Argument(parsing: .allUnrecognized, help: .hidden)
    package var unrecognized: [String] = []

    package init() {}

    /// Every spelling the runtime accepts, for the error that lists them (a test keeps it true).
    package static let knownFlags = [
        "--test-input", "--log-level", "--local", "--host", "--port", "--concurrency", "--mcp", "--list-tools",
        "--allow-unauthenticated", "--help",
    ]
    /// runpod-python's spellings of the same flags.
    package static let runpodFlags = [
        "--test_input", "--rp_log_level", "--rp_serve_api", "--rp_api_host", "--rp_api_port", "--rp_api_concurrency",
        "--rp_debugger",
    ]
}

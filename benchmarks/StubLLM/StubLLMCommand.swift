import ArgumentParser
import StubLLM

#if canImport(Glibc)
import Glibc
#endif

/// The tests' stub LLM as a standalone server, for benchmarks and end-to-end runs.
@main
struct StubLLMCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stub-llm", abstract: "An OpenAI-compatible chat API answering the orchestrator's schemas (see Tests/StubLLM).")

    @Option(help: "Address to listen on.") var host = "127.0.0.1"
    @Option(help: "Port to listen on; 0 picks a free one (printed on start).") var port = 0
    @Option(help: "Added to every answer, in ms (a model's generation time).") var latencyMs = 0

    func run() async throws {
        let stub = StubLLM(latency: .milliseconds(latencyMs), recording: false)
        try await stub.serve(host: host, port: port) { port in
            print("listening on \(port)")
            fflush(nil)
        }
    }
}

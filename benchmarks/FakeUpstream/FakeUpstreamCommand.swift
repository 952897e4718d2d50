import ArgumentParser
import FakeContext7
import StubLLM

#if canImport(Glibc)
import Glibc
#endif

/// The tests' fakes of upstream services as standalone servers, for benchmarks, the Python tests
/// and end-to-end runs: `fake-upstream context7` (Tests/FakeContext7) and `fake-upstream llm`
/// (Tests/StubLLM). Each prints "listening on <port>" once it serves.
@main
struct FakeUpstreamCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fake-upstream", abstract: "Fakes of upstream services (see Tests/FakeContext7 and Tests/StubLLM).",
        subcommands: [Context7.self, LLM.self])

    struct Options: ParsableArguments {
        @Option(help: "Address to listen on.") var host = "127.0.0.1"
        @Option(help: "Port to listen on; 0 picks a free one (printed on start).") var port = 0
        @Option(help: "Added to every answer, in ms (the upstream's network and work).") var latencyMs = 0

        func announce(_ port: Int) {
            print("listening on \(port)")
            fflush(nil)
        }
    }

    struct Context7: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "A fake of Context7's public API v2.")
        @OptionGroup var options: Options

        func run() async throws {
            let options = options
            try await FakeContext7(latency: .milliseconds(options.latencyMs), recording: false)
                .serve(host: options.host, port: options.port) { options.announce($0) }
        }
    }

    struct LLM: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "An OpenAI-compatible chat API answering the orchestrator's schemas.")
        @OptionGroup var options: Options

        func run() async throws {
            let options = options
            try await StubLLM(latency: .milliseconds(options.latencyMs), recording: false)
                .serve(host: options.host, port: options.port) { options.announce($0) }
        }
    }
}

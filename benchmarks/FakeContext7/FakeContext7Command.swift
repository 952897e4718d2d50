import ArgumentParser
import FakeContext7

#if canImport(Glibc)
import Glibc
#endif

/// The fake Context7 API of the tests as a standalone server, for benchmarks and end-to-end runs.
@main
struct FakeContext7Command: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fake-context7", abstract: "A fake of Context7's public API v2 (see Tests/FakeContext7).")

    @Option(help: "Address to listen on.") var host = "127.0.0.1"
    @Option(help: "Port to listen on; 0 picks a free one (printed on start).") var port = 0
    @Option(help: "Added to every answer, in ms (an upstream's network and work).") var latencyMs = 0

    func run() async throws {
        let fake = FakeContext7(latency: .milliseconds(latencyMs), recording: false)
        try await fake.serve(host: host, port: port) { port in
            print("listening on \(port)")
            fflush(nil)
        }
    }
}

import ArgumentParser
import NIOCore
import WorkerRuntime
import WorkerJSON
import WorkerRuntimeTesting

#if canImport(Glibc)
import Glibc
#endif

/// RunPod's worker API as a standalone server: the same mock the tests use, in its own process,
/// so a worker under test (or runpod-python in a benchmark) cannot starve it.
@main
struct MockPlatformCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mock-platform", abstract: "A recording mock of RunPod's worker API.")

    @Option(help: "Address to listen on.") var host = "127.0.0.1"
    @Option(help: "Port to listen on; 0 picks a free one (printed on start).") var port = 0
    @Option(help: "Hand out jobs with this JSON input on every job-take, for ever.") var generate: String?
    @Option(help: "How long an empty job-take is held before answering 204, in ms.") var longPollMs = 100
    @Flag(help: "Keep no request log (for long benchmarks); /_stats still counts.") var noRecording = false

    func run() async throws {
        let platform = MockPlatform(longPoll: .milliseconds(longPollMs))
        if let generate {
            do {
                platform.generateJobs(input: try JSONValue.parse(generate))
            } catch {
                throw ValidationError("--generate must be JSON: \(error)")
            }
        }
        if noRecording { platform.stopRecording() }
        let channel = try await platform.start(host: host, port: port)
        print("listening on \(platform.port)")
        fflush(nil)
        // Until SIGTERM/SIGINT ends the process.
        try await channel.closeFuture.get()
    }
}

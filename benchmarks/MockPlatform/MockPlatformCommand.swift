import ArgumentParser
import Hummingbird
import WorkerRuntime
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

    func run() async throws {
        let platform = MockPlatform(longPoll: .milliseconds(longPollMs))
        if let generate {
            do {
                platform.generateJobs(input: try JSONValue.parse(generate))
            } catch {
                throw ValidationError("--generate must be JSON: \(error)")
            }
        }
        let app = platform.makeApplication(host: host, port: port)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await app.runService() }
            while platform.port == 0 { try await Task.sleep(for: .milliseconds(2)) }
            print("listening on \(platform.port)")
            fflush(nil)
            try await group.next()
        }
    }
}

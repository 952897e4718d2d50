import WorkerEndpointServer
import WorkerFleet
import WorkerMCP
import WorkerRuntime
import WorkerOpenAI

/// The composition root, shared by `main` and the tests.
enum Echo {
    static func makeRuntime() -> WorkerRuntime {
        // Streams are aggregated into the final result, so /runsync returns every chunk.
        WorkerRuntime(
            handler: EchoHandler(), options: WorkerOptions(returnAggregateStream: true), features: [.openAIPassthrough(), .endpointServer(), .mcp(), .fleet()])
    }
}

@main
struct EchoMain {
    static func main() {
        Echo.makeRuntime().runAndExit()
    }
}

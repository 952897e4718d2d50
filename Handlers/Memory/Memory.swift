import TextEmbedding
import WorkerEndpointServer
import WorkerFleet
import WorkerMCP
import WorkerRuntime
import WorkerOpenAI

/// The composition root, shared by `main` and the tests.
enum Memory {
    static func makeRuntime(_ configuration: MemoryConfiguration) -> WorkerRuntime {
        WorkerRuntime(
            handler: MemoryHandler(configuration: configuration),
            options: WorkerOptions(name: "memory", instructions: MemoryTools.instructions, tools: MemoryTools.all),
            features: [.openAIPassthrough(), .endpointServer(), .mcp(), .fleet()])
    }
}

@main
struct MemoryMain {
    static func main() {
        BLASKernels.useBestKernels()
        WorkerRuntime.runAndExit { environment in
            Memory.makeRuntime(try MemoryConfiguration.fromEnvironment(environment))
        }
    }
}

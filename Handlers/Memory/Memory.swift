import WorkerEndpointServer
import WorkerRuntime

/// The composition root, shared by `main` and the tests.
enum Memory {
    static func makeRuntime(_ configuration: MemoryConfiguration) -> WorkerRuntime {
        WorkerRuntime(handler: MemoryHandler(configuration: configuration), features: [.endpointServer()])
    }
}

@main
struct MemoryMain {
    static func main() {
        WorkerRuntime.runAndExit { environment in
            Memory.makeRuntime(try MemoryConfiguration.fromEnvironment(environment))
        }
    }
}

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif
import WorkerRuntime

/// The composition root, shared by `main` and the tests.
enum Memory {
    static func makeRuntime(_ configuration: MemoryConfiguration) -> WorkerRuntime {
        WorkerRuntime(handler: MemoryHandler(configuration: configuration))
    }
}

@main
struct MemoryMain {
    static func main() {
        do {
            let configuration = try MemoryConfiguration.fromEnvironment(ProcessInfo.processInfo.environment)
            Memory.makeRuntime(configuration).runAndExit()
        } catch {
            RunPodLogHandler.writeToStandardError("Worker start-up failed: \(error)\n")
            exit(1)
        }
    }
}

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import VectorIndex
import WorkerJSON
import WorkerRuntime
import WorkerOpenAI

/// The memory handler's settings, read once from the environment.
struct MemoryConfiguration: Sendable {
    /// `MEMORY_DIR`: `/runpod-volume/memory` when the volume exists, else `./.volume/memory`.
    var directory: String
    /// `EMBEDDINGS_BASE_URL` (+ `EMBEDDINGS_MODEL`, `EMBEDDINGS_API_KEY`); nil uses the offline embedder.
    var embeddings: OpenAIConfiguration?
    var embeddingsModel: String
    /// `EMBEDDINGS_MODEL_DIR`, else the model the image ships (`defaultModelDirectory`) when it is
    /// there: a sentence-transformers model run in process. Unused when `EMBEDDINGS_BASE_URL` is set.
    var modelDirectory: String?
    static let defaultModelDirectory = "/opt/models/all-MiniLM-L6-v2"
    /// `MEMORY_MAX_OPEN_NAMESPACES` (default 256): namespaces kept open at once; idle ones beyond
    /// it are closed (least recently used first) and opened again on their next use. Each open
    /// namespace holds two descriptors and its index in memory.
    var maxOpenNamespaces = 256

    static func fromEnvironment(
        _ env: [String: String], volumeExists: Bool = FileManager.default.fileExists(atPath: "/runpod-volume"),
        fileExists: (String) -> Bool = { FileManager.default.fileExists(atPath: $0) }
    ) throws(ConfigurationError) -> MemoryConfiguration {
        let env = EnvironmentReader(env)
        let directory = env.string("MEMORY_DIR") ?? (volumeExists ? "/runpod-volume/memory" : "./.volume/memory")
        var embeddings: OpenAIConfiguration?
        if let base = try env.baseURL("EMBEDDINGS_BASE_URL", example: "https://api.openai.com/v1") {
            var upstream = OpenAIConfiguration(baseURL: base, apiKey: env.string("EMBEDDINGS_API_KEY"))
            upstream.timeout = .seconds(60)
            embeddings = upstream
        }
        var configuration = MemoryConfiguration(
            directory: directory, embeddings: embeddings, embeddingsModel: env.string("EMBEDDINGS_MODEL") ?? "text-embedding-3-small")
        if let directory = env.string("EMBEDDINGS_MODEL_DIR") {
            guard fileExists(directory + "/config.json") else {
                throw ConfigurationError.invalidValue(
                    "EMBEDDINGS_MODEL_DIR", directory, expected: "a sentence-transformers model directory (scripts/fetch-model.sh makes one)")
            }
            configuration.modelDirectory = directory
        } else if fileExists(defaultModelDirectory + "/config.json") {
            configuration.modelDirectory = defaultModelDirectory
        }
        if let limit = try env.whole("MEMORY_MAX_OPEN_NAMESPACES", in: 1...100_000) { configuration.maxOpenNamespaces = limit }
        // Read by the C kernels, which would take an unknown value as no cap at all.
        if let kernels = env.environment["VECTOR_KERNELS"], !VectorIndex.kernelNames.contains(kernels) {
            throw ConfigurationError.invalidValue(
                "VECTOR_KERNELS", kernels, expected: "one of \(VectorIndex.kernelNames.joined(separator: ", ")), or unset for the best the CPU runs")
        }
        return configuration
    }
}

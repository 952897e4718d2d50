import Foundation
import Synchronization
import Testing
import TestSupport
import TextEmbedding
import WorkerJSON
import WorkerRuntime

@testable import Memory

/// The memory handler with the sentence-transformers model in process (`scripts/fetch-model.sh`
/// puts it where the test command expects it).
@Suite("The memory handler with all-MiniLM-L6-v2", .tags(.heavy), .pass(.heavy))
final class SemanticMemoryTests: Sendable {
    private let directories = Mutex<[String]>([])

    static let modelDirectory = TestEmbeddingsModel.directory

    deinit {
        for directory in directories.withLock({ $0 }) { try? FileManager.default.removeItem(atPath: directory) }
    }

    func handler(model: String? = SemanticMemoryTests.modelDirectory) async throws -> MemoryHandler {
        let directory = NSTemporaryDirectory() + "semantic-memory-\(UUID().uuidString)"
        directories.withLock { $0.append(directory) }
        var configuration = MemoryConfiguration(directory: directory, embeddings: nil, embeddingsModel: "m")
        configuration.modelDirectory = model
        let handler = MemoryHandler(configuration: configuration)
        try await handler.start()
        return handler
    }

    func run(_ handler: MemoryHandler, _ input: JSONValue) async throws -> JSONValue {
        try await handler.run(try MemoryRequest.parse(input))
    }

    /// Facts and questions that mean the same but share (almost) no words.
    static let facts: [(key: String, fact: String, question: String)] = [
        ("car", "My car broke down on the highway this morning.", "automobile trouble on the motorway"),
        ("cat", "The kitten is asleep on the sofa.", "where is the young feline napping?"),
        ("peanuts", "I am allergic to peanuts.", "which nuts give me a bad reaction?"),
        ("meeting", "The team meeting moved to Thursday afternoon.", "when is the staff gathering rescheduled"),
        ("guitar", "He plays bass guitar in a rock band.", "what musical instrument does he perform with"),
        ("sales", "The quarterly sales numbers are due Friday.", "deadline for the revenue report"),
        ("doctor", "She has an appointment with her physician tomorrow.", "medical checkup scheduled soon"),
        ("rain", "Bring an umbrella, heavy showers are expected.", "will the weather be wet"),
    ]

    func topHits(_ handler: MemoryHandler) async throws -> Int {
        let items: [JSONValue] = Self.facts.map { ["key": .string($0.key), "content": .string($0.fact)] }
        _ = try await run(handler, ["action": "store_batch", "namespace": "facts", "items": .array(items)])
        var hits = 0
        for fact in Self.facts {
            let found = try await run(handler, ["action": "retrieve", "namespace": "facts", "query": .string(fact.question), "k": 1])
            if found["memories"]?[0]?["key"]?.stringValue == fact.key { hits += 1 }
        }
        return hits
    }

    @Test("paraphrased questions find their fact first with the model; the hashed fallback misses most")
    func semanticRetrieval() async throws {
        let model = try await handler()
        #expect(try await topHits(model) == Self.facts.count)
        let hashed = try await handler(model: nil)
        #expect(try await topHits(hashed) <= Self.facts.count / 2)
    }

    @Test("embed returns the model's normalised vectors, its name and dimension; namespaces record the model")
    func embed() async throws {
        let memory = try await handler()
        let answer = try await run(memory, ["action": "embed", "texts": ["car", "automobile"]])
        #expect(answer["model"] == "local:all-MiniLM-L6-v2")
        #expect(answer["dimension"] == 384)
        let vectors = answer["vectors"]?.arrayValue?.map { $0.arrayValue!.map { Float($0.doubleValue!) } } ?? []
        #expect(vectors.count == 2 && vectors.allSatisfy { $0.count == 384 })
        let norm = vectors[0].reduce(0) { $0 + $1 * $1 }.squareRoot()
        #expect(abs(norm - 1) < 1e-4)
        _ = try await run(memory, ["action": "store", "key": "k", "content": "x"])
        #expect(try await run(memory, ["action": "stats"])["embedder"] == "local:all-MiniLM-L6-v2")
        await #expect(throws: MemoryInputError.self) { try await self.run(memory, ["action": "embed", "texts": []]) }
        await #expect(throws: MemoryInputError.self) { try await self.run(memory, ["action": "embed", "texts": [1]]) }
    }

    @Test("16 concurrent jobs share a few forward passes instead of making 16")
    func batching() async throws {
        let encoder = try SentenceEncoder(directory: Self.modelDirectory)
        let batcher = EmbeddingBatcher(encoder: encoder, window: .milliseconds(20))
        let results = await withTaskGroup(of: (Int, [[Float]]).self) { group in
            for index in 0..<16 {
                group.addTask { (index, await batcher.embed(["question number \(index)"])) }
            }
            var results: [Int: [[Float]]] = [:]
            for await (index, vectors) in group { results[index] = vectors }
            return results
        }
        #expect(results.count == 16)
        #expect(batcher.passCount <= 4, "\(batcher.passCount) passes")
        // Without a window (the default) an idle model starts at once; requests arriving during a
        // pass still share the next one.
        let eager = EmbeddingBatcher(encoder: encoder)
        await withTaskGroup(of: Void.self) { group in
            for index in 0..<16 { group.addTask { _ = await eager.embed(["question number \(index)"]) } }
        }
        #expect(eager.passCount < 16 && eager.passCount >= 1, "\(eager.passCount) passes")
        // Sharing a pass never mixes answers up.
        let alone = encoder.embed(["question number 7"], threads: 1)[0]
        #expect(zip(alone, results[7]![0]).allSatisfy { abs($0 - $1) < 1e-5 })
    }

    @Test("a broken model directory fails start-up with a message naming the file; a missing one is a configuration error")
    func brokenModel() async throws {
        let broken = NSTemporaryDirectory() + "broken-model-\(UUID().uuidString)"
        directories.withLock { $0.append(broken) }
        try FileManager.default.createDirectory(atPath: broken, withIntermediateDirectories: true)
        try Data("{\"model_type\": \"gpt2\"}".utf8).write(to: URL(fileURLWithPath: broken + "/config.json"))
        do {
            _ = try await handler(model: broken)
            Issue.record("start-up should fail")
        } catch {
            #expect("\(error)".contains("config.json") && "\(error)".contains("gpt2"), "\(error)")
        }
        #expect(throws: ConfigurationError.self) {
            try MemoryConfiguration.fromEnvironment(["EMBEDDINGS_MODEL_DIR": "/nonexistent"], volumeExists: false)
        }
        let chosen = try MemoryConfiguration.fromEnvironment(
            ["EMBEDDINGS_MODEL_DIR": Self.modelDirectory, "EMBEDDINGS_BASE_URL": "http://127.0.0.1:9"], volumeExists: false)
        #expect(MemoryHandler(configuration: chosen).embedder is OpenAIEmbedder, "a service, when set, wins")
        let image = try MemoryConfiguration.fromEnvironment([:], volumeExists: false) { $0 == MemoryConfiguration.defaultModelDirectory + "/config.json" }
        #expect(image.modelDirectory == MemoryConfiguration.defaultModelDirectory)
        let none = try MemoryConfiguration.fromEnvironment([:], volumeExists: false) { _ in false }
        #expect(MemoryHandler(configuration: none).embedder is OfflineEmbedder)
    }
}

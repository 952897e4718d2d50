import CurlHTTP
import Foundation
import Synchronization
import Testing
import TestSupport
import WorkerJSON
import WorkerRuntime
import WorkerOpenAI

@testable import Memory
@testable import MemoryStore

@Suite("The memory handler", .defaultPass)
final class MemoryHandlerTests: Sendable {
    private let directories = Mutex<[String]>([])

    deinit {
        for directory in directories.withLock({ $0 }) { try? FileManager.default.removeItem(atPath: directory) }
    }

    /// A handler on a fresh directory, removed when the test ends.
    func handler(embedder: (any TextEmbedder)? = nil) -> (MemoryHandler, String) {
        let directory = NSTemporaryDirectory() + "memory-handler-\(UUID().uuidString)"
        directories.withLock { $0.append(directory) }
        return (MemoryHandler(configuration: MemoryConfiguration(directory: directory, embeddings: nil, embeddingsModel: "m"), embedder: embedder), directory)
    }

    func run(_ handler: MemoryHandler, _ input: JSONValue) async throws -> JSONValue {
        try await handler.run(try MemoryRequest.parse(input))
    }

    @Test("store, retrieve (nearest first, filtered), get, delete (idempotent), stats")
    func actions() async throws {
        let (memory, _) = handler()
        try await memory.start()
        let stored = try await run(memory, ["action": "store", "key": "a", "content": "how to reset a password", "metadata": ["topic": "account", "n": 1]])
        #expect(stored == ["stored": 1, "keys": ["a"], "namespace": "default"])
        _ = try await run(memory, [
            "action": "store_batch",
            "items": [
                ["key": "b", "content": "quarterly revenue grew in europe", "metadata": ["topic": "finance"]],
                ["key": "c", "content": "the password reset link expired", "metadata": ["topic": "account"]],
            ],
        ])
        let found = try await run(memory, ["action": "retrieve", "query": "reset my password", "k": 3])
        let keys = found["memories"]?.arrayValue?.compactMap { $0["key"]?.stringValue }
        #expect(keys?.count == 3)
        #expect(keys?.last == "b")
        let distances = found["memories"]?.arrayValue?.compactMap { $0["distance"]?.doubleValue } ?? []
        #expect(distances == distances.sorted())
        let filtered = try await run(memory, ["action": "retrieve", "query": "revenue", "filter": ["topic": "account"]])
        #expect(Set(filtered["memories"]?.arrayValue?.compactMap { $0["key"]?.stringValue } ?? []) == ["a", "c"])
        let numeric = try await run(memory, ["action": "retrieve", "query": "x", "filter": ["n": 1.0]])
        #expect(numeric["memories"]?.arrayValue?.map { $0["key"] } == ["a"])
        let got = try await run(memory, ["action": "get", "key": "a"])
        #expect(got["memory"]?["content"] == "how to reset a password")
        #expect(got["memory"]?["metadata"] == ["topic": "account", "n": 1])
        #expect(try await run(memory, ["action": "delete", "key": "a"]) == ["deleted": true])
        #expect(try await run(memory, ["action": "delete", "key": "a"]) == ["deleted": false])
        #expect(try await run(memory, ["action": "get", "key": "a"])["found"] == false)
        let stats = try await run(memory, ["action": "stats"])
        #expect(stats["count"] == 2)
        #expect(stats["dimension"] == 384)
        #expect(stats["embedder"] == "hashed-ngrams-v1")
        // The vector path this CPU runs, named (it differs between CPU families).
        #expect(["avx512-vnni", "avx2", "float32"].contains(stats["vector_kernels"]?.stringValue ?? ""))
    }

    @Test("a store may carry its own vector; namespaces are separate; an empty namespace has nothing")
    func vectorsAndNamespaces() async throws {
        let (memory, _) = handler()
        _ = try await run(memory, ["action": "store", "key": "v", "content": "x", "vector": [1, 0, 0], "namespace": "custom"])
        _ = try await run(memory, ["action": "store", "key": "w", "content": "y", "vector": [0, 1, 0], "namespace": "custom"])
        let found = try await run(memory, ["action": "retrieve", "vector": [0.9, 0.1, 0], "k": 1, "namespace": "custom"])
        #expect(found["memories"]?[0]?["key"] == "v")
        #expect(found["memories"]?[0]?["distance"]?.doubleValue.map { abs($0 - 0.02) < 1e-6 } == true)
        #expect(try await run(memory, ["action": "retrieve", "query": "x", "namespace": "empty"]) == ["memories": []])
        #expect(try await run(memory, ["action": "stats", "namespace": "empty"])["count"] == 0)
    }

    @Test("data persists across handler instances (a restarted worker)")
    func persistence() async throws {
        let (memory, directory) = handler()
        _ = try await run(memory, ["action": "store", "key": "kept", "content": "durable text"])
        let restarted = MemoryHandler(configuration: MemoryConfiguration(directory: directory, embeddings: nil, embeddingsModel: "m"))
        #expect(try await run(restarted, ["action": "get", "key": "kept"])["memory"]?["content"] == "durable text")
    }

    @Test(
        "bad input is an error that names the problem, and nothing is written",
        arguments: [
            (JSONValue.string("store"), "input must be an object"), (["key": "a"], "input.action is missing"),
            (["action": "fly"], "unknown"), (["action": "store", "content": "x"], "input.key"),
            (["action": "store", "key": "a"], "input.content must be a string"),
            (["action": "store", "key": "a", "content": 5], "input.content must be a string"),
            (["action": "store", "key": "a", "content": "x", "metadata": [1]], "metadata must be an object"),
            (["action": "store", "key": "a", "content": "x", "vector": [1, "2"]], "vector[1] must be a number"),
            (["action": "store", "key": "a", "content": "x", "vector": [1, 1e39]], "not finite"),
            (["action": "store", "key": "a", "content": "x", "vector": []], "non-empty list"),
            (["action": "store_batch", "items": []], "1 to 10000 items"),
            (["action": "store_batch", "items": [["key": "a", "content": "x"], ["key": "a", "content": "y"]]], "appears twice"),
            (["action": "store_batch", "items": [["key": "a", "content": "x"], ["key": "b"]]], "items[1].content"),
            (["action": "retrieve", "query": "x", "k": 0], "from 1 to 1000"), (["action": "retrieve", "query": "x", "k": 1001], "from 1 to 1000"),
            (["action": "retrieve", "query": "x", "k": 2.5], "from 1 to 1000"), (["action": "retrieve"], "exactly one of"),
            (["action": "retrieve", "query": "x", "vector": [1]], "exactly one of"),
            (["action": "retrieve", "query": "x", "filter": ["a": [1]]], "equality only"),
            (["action": "get", "key": ""], "input.key"), (["action": "stats", "namespace": "../etc"], "input.namespace"),
            (["action": "stats", "namespace": "a/b"], "input.namespace"), (["action": "store", "key": "a", "content": "   "], "cannot be embedded"),
        ] as [(JSONValue, String)])
    func badInput(input: JSONValue, message: String) async throws {
        let (memory, _) = handler()
        _ = try await run(memory, ["action": "store", "key": "existing", "content": "some text"])
        do {
            _ = try await run(memory, input)
            Issue.record("accepted \(input)")
        } catch {
            #expect("\(error)".contains(message), "\(error)")
        }
        #expect(try await run(memory, ["action": "stats"])["count"] == 1)
    }

    @Test("oversized content and a vector of the wrong dimension are refused")
    func limits() async throws {
        let (memory, _) = handler()
        await #expect(throws: MemoryInputError.self) {
            try await run(memory, ["action": "store", "key": "big", "content": .string(String(repeating: "a", count: (1 << 20) + 1))])
        }
        _ = try await run(memory, ["action": "store", "key": "a", "content": "x", "vector": [1, 2, 3]])
        do {
            _ = try await run(memory, ["action": "store", "key": "b", "content": "x", "vector": [1, 2]])
            Issue.record("accepted a 2-dimensional vector")
        } catch {
            #expect("\(error)".contains("3-dimensional"))
        }
    }

    @Test("the OpenAI-compatible embedder: batched requests, one vector per text, errors named")
    func openAIEmbedder() async throws {
        let stub = StubUpstream()
        try await stub.run { base in
            let embedder = OpenAIEmbedder(
                upstream: OpenAIConfiguration(baseURL: base, apiKey: "ek"), model: "emb", client: CurlHTTPClient(name: "embeddings-test"),
                retryDelays: [.milliseconds(10)])
            defer { Task { await embedder.shutdown() } }
            let texts = (0..<300).map { String(repeating: "x", count: $0 % 7 + 1) }
            let vectors = try await embedder.embed(texts)
            #expect(vectors.count == 300)
            #expect(vectors[5] == [Float(texts[5].count), 0.5, -0.5])
            // 300 texts in batches of 128: three requests, with the model and the key.
            let requests = stub.requests.withLock { $0 }
            #expect(requests.count == 3)
            #expect(requests.allSatisfy { $0.body?["model"] == "emb" && $0.authorization == "Bearer ek" })
            await #expect(throws: EmbeddingError.self) { try await embedder.embed(["ok", "fail"]) }
            let (memory, _) = handler(embedder: embedder)
            let stored = try await run(memory, ["action": "store", "key": "k", "content": "abc"])
            #expect(stored["stored"] == 1)
            #expect(try await run(memory, ["action": "stats"])["embedder"] == "openai:emb")
        }
    }

    @Test("MEMORY_DIR defaults to the volume when it exists")
    func configuration() throws {
        #expect(try MemoryConfiguration.fromEnvironment([:], volumeExists: true).directory == "/runpod-volume/memory")
        // VECTOR_KERNELS is read by the C kernels, which ignore what they do not know: checked here.
        #expect(throws: ConfigurationError.self) { try MemoryConfiguration.fromEnvironment(["VECTOR_KERNELS": "avx512"]) }
        #expect(try MemoryConfiguration.fromEnvironment(["VECTOR_KERNELS": "avx2"], volumeExists: false).directory == "./.volume/memory")
        #expect(try MemoryConfiguration.fromEnvironment([:], volumeExists: false).directory == "./.volume/memory")
        #expect(try MemoryConfiguration.fromEnvironment(["MEMORY_DIR": "/data/m"], volumeExists: true).directory == "/data/m")
        #expect(throws: ConfigurationError.self) { try MemoryConfiguration.fromEnvironment(["EMBEDDINGS_BASE_URL": "nope"]) }
    }
}

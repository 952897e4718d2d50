import MemoryStore
import CurlHTTP
import TextEmbedding
import WorkerJSON
import WorkerRuntime
import WorkerOpenAI
import Synchronization

/// Turns texts into vectors. A namespace records the embedder's name, so vectors from different
/// embedders never mix.
protocol TextEmbedder: Sendable {
    var name: String { get }
    func embed(_ texts: [String]) async throws -> [[Float]]
    /// The kernels the embedder runs on, for `stats` (empty for a remote one).
    var kernels: [String: String] { get }
    /// Loads what the embedder needs (a model) before the worker takes jobs.
    func start() async throws
    /// Releases what the embedder holds (connections, threads) once the worker stops.
    func shutdown() async
}

extension TextEmbedder {
    var kernels: [String: String] { [:] }
    func start() async throws {}
    func shutdown() async {}
}

/// A sentence-transformers model run in process (`EMBEDDINGS_MODEL_DIR`, or the one the image
/// ships), loaded at start-up; concurrent jobs share forward passes.
final class LocalModelEmbedder: TextEmbedder {
    let directory: String
    private let loaded = Mutex<EmbeddingBatcher?>(nil)

    init(directory: String) {
        self.directory = directory
    }

    /// The model's directory name, so a namespace records which model made its vectors.
    var name: String { "local:" + (directory.split(separator: "/").last.map(String.init) ?? directory) }

    var batcher: EmbeddingBatcher? { loaded.withLock { $0 } }

    var kernels: [String: String] {
        var kernels = ["blas_kernels": BLASKernels.current]
        if let encoder = batcher?.encoder { kernels["encoder_kernels"] = encoder.kernelPath }
        return kernels
    }

    func start() async throws {
        let encoder: SentenceEncoder
        do {
            encoder = try SentenceEncoder(directory: directory)
        } catch {
            throw MemoryInputError("the embeddings model in \(directory) cannot be loaded: \(error)")
        }
        loaded.withLock { $0 = EmbeddingBatcher(encoder: encoder) }
    }

    func embed(_ texts: [String]) async throws -> [[Float]] {
        guard let batcher else { throw MemoryInputError("the embeddings model is still loading; retry shortly") }
        return await batcher.embed(texts)
    }
}

/// The built-in offline embedder (no service needed).
struct OfflineEmbedder: TextEmbedder {
    let embedder = HashedEmbedder()
    var name: String { HashedEmbedder.name }

    func embed(_ texts: [String]) async throws -> [[Float]] {
        try texts.enumerated().map { index, text in
            do {
                return try embedder.embed(text)
            } catch {
                throw MemoryInputError("content of item \(index) cannot be embedded: \(error)")
            }
        }
    }
}

/// An OpenAI-compatible `/v1/embeddings` endpoint, in batches, retried on 5xx and network errors.
struct OpenAIEmbedder: TextEmbedder {
    let upstream: OpenAIConfiguration
    let model: String
    let client: CurlHTTPClient
    let batchSize = 128
    let retryDelays: [Duration]

    init(upstream: OpenAIConfiguration, model: String, client: CurlHTTPClient, retryDelays: [Duration] = [.seconds(1), .seconds(2)]) {
        self.upstream = upstream
        self.model = model
        self.client = client
        self.retryDelays = retryDelays
    }

    var name: String { "openai:\(model)" }

    func shutdown() async { await client.shutdown() }

    func embed(_ texts: [String]) async throws -> [[Float]] {
        var vectors: [[Float]] = []
        var start = 0
        while start < texts.count {
            let batch = Array(texts[start..<min(start + batchSize, texts.count)])
            vectors += try await embedBatch(batch)
            start += batch.count
        }
        return vectors
    }

    private func embedBatch(_ texts: [String]) async throws -> [[Float]] {
        var headers: [(name: String, value: String)] = []
        if let key = upstream.apiKey { headers.append(("Authorization", "Bearer \(key)")) }
        let body: JSONValue = ["model": .string(model), "input": .array(texts.map { .string($0) })]
        let request = try HTTPClientRequest.json(url: upstream.url(for: "/v1/embeddings"), body: body, headers: headers, timeout: upstream.timeout)
        var lastFailure = ""
        for attempt in 0...retryDelays.count {
            do {
                let response = try await client.execute(request)
                if (200..<300).contains(response.status) { return try parse(response.body, expected: texts.count) }
                lastFailure = "HTTP \(response.status): \(String(decoding: response.body.prefix(300), as: UTF8.self))"
                if response.status < 500 && response.status != 429 { break }
            } catch let error as HTTPClientError {
                lastFailure = "\(error)"
            }
            if attempt < retryDelays.count { try await Task.sleep(for: retryDelays[attempt]) }
        }
        throw EmbeddingError.upstream(lastFailure)
    }

    private func parse(_ body: [UInt8], expected: Int) throws -> [[Float]] {
        guard let data = (try? JSONValue.parse(body))?["data"]?.arrayValue else {
            throw EmbeddingError.upstream("the answer has no \"data\" list")
        }
        var vectors = [[Float]?](repeating: nil, count: expected)
        for (position, item) in data.enumerated() {
            let index = item["index"]?.intValue ?? position
            guard (0..<expected).contains(index), let values = item["embedding"]?.arrayValue else {
                throw EmbeddingError.upstream("embedding \(position) is malformed")
            }
            let vector = values.compactMap { $0.doubleValue.map(Float.init) }
            guard vector.count == values.count, !vector.isEmpty, vector.allSatisfy(\.isFinite) else {
                throw EmbeddingError.upstream("embedding \(position) has non-numeric or non-finite components")
            }
            vectors[index] = vector
        }
        guard vectors.allSatisfy({ $0 != nil }), Set(vectors.map { $0!.count }).count == 1 else {
            throw EmbeddingError.upstream("expected \(expected) embeddings of one dimension, got \(data.count)")
        }
        return vectors.map { $0! }
    }
}

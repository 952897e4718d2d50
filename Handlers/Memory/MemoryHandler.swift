import MemoryStore
import VectorIndex
import Synchronization
import CurlHTTP
import WorkerJSON
import WorkerRuntime
import Logging
import TextEmbedding

/// Stores texts with their embeddings and finds the nearest ones (`Handlers/Memory`).
struct MemoryHandler: RawJobHandler {
    let configuration: MemoryConfiguration
    let embedder: any TextEmbedder
    private let namespaces: NamespaceCache

    init(configuration: MemoryConfiguration, embedder: (any TextEmbedder)? = nil) {
        self.configuration = configuration
        self.namespaces = NamespaceCache(limit: configuration.maxOpenNamespaces)
        if let embedder {
            self.embedder = embedder
        } else if let upstream = configuration.embeddings {
            // A service, when configured, wins over a model on disk.
            self.embedder = OpenAIEmbedder(upstream: upstream, model: configuration.embeddingsModel, client: CurlHTTPClient(name: "embeddings"))
        } else if let directory = configuration.modelDirectory {
            self.embedder = LocalModelEmbedder(directory: directory)
        } else {
            self.embedder = OfflineEmbedder()
        }
    }

    /// Namespaces open now (bounded by `MEMORY_MAX_OPEN_NAMESPACES`).
    var openNamespaces: Int { namespaces.openNamespaces }

    /// The data directory must be usable before the worker takes jobs.
    func start() async throws {
        do {
            try MemoryNamespace.prepareDirectory(configuration.directory)
        } catch {
            throw MemoryInputError("MEMORY_DIR \(configuration.directory) cannot be used: \(error)")
        }
        try await embedder.start()
        let logger = Logger(label: "memory")
        if embedder is OfflineEmbedder {
            logger.warning(
                "Embeddings: the hashed n-gram fallback (\(embedder.name)), which matches words, not meaning. Set EMBEDDINGS_MODEL_DIR to a sentence-transformers model (scripts/fetch-model.sh) or EMBEDDINGS_BASE_URL to an embeddings service.")
        } else {
            logger.info("Embeddings: \(embedder.name) (OpenBLAS kernels: \(BLASKernels.current))")
        }
    }

    /// After the last job: the embedder's HTTP client ends its thread.
    func shutdown() async throws {
        await embedder.shutdown()
    }

    func handle(_ job: Job, output: JobOutputWriter, context: JobContext) async throws {
        try output.respond(try await run(try MemoryRequest.parse(job.input)))
    }

    func run(_ request: MemoryRequest) async throws -> JSONValue {
        switch request {
        case .store(let namespace, let items):
            var vectors = items.map(\.vector)
            let toEmbed = items.indices.filter { vectors[$0] == nil }
            if !toEmbed.isEmpty {
                let embedded = try await embedder.embed(toEmbed.map { items[$0].content })
                for (position, index) in toEmbed.enumerated() {
                    vectors[index] = try MemoryRequest.checked(embedded[position], "the embedding of input item \(index)")
                }
            }
            let dimension = vectors[0]!.count
            if let bad = vectors.firstIndex(where: { $0!.count != dimension }) {
                throw MemoryInputError("item \(bad) has a \(vectors[bad]!.count)-dimensional vector; item 0 has \(dimension)")
            }
            let memories = zip(items, vectors).map { item, vector in
                StoredMemory(
                    key: item.key, content: item.content, metadata: (try? item.metadata.jsonString()) ?? "{}",
                    attributes: Self.attributes(item.metadata), vector: vector!)
            }
            try await namespaces.withNamespace(
                directory: directory(namespace), dimension: dimension, embedder: embedder.name, create: true
            ) { store in try await store.store(memories) }
            return ["stored": .integer(Int64(items.count)), "keys": .array(items.map { .string($0.key) }), "namespace": .string(namespace)]

        case .retrieve(let namespace, let query, let vector, let k, let filter):
            var queryVector = vector
            if let query { queryVector = try await embedder.embed([query])[0] }
            let found = try await namespaces.withNamespace(
                directory: directory(namespace), dimension: queryVector!.count, embedder: embedder.name, create: false
            ) { store in try store.retrieve(queryVector!, k: k, filter: filter) }
            return ["memories": .array((found ?? []).map { memory, distance in Self.describe(memory, distance: distance) })]

        case .get(let namespace, let key):
            let memory = try await namespaces.withNamespace(
                directory: directory(namespace), dimension: nil, embedder: embedder.name, create: false
            ) { store in store.get(key) }
            guard let memory = memory ?? nil else { return ["found": false, "memory": nil] }
            return ["found": true, "memory": Self.describe(memory, distance: nil)]

        case .delete(let namespace, let key):
            let deleted = try await namespaces.withNamespace(
                directory: directory(namespace), dimension: nil, embedder: embedder.name, create: false
            ) { store in try await store.delete(key) }
            return ["deleted": .bool(deleted ?? false)]

        case .embed(let texts):
            let vectors = try await embedder.embed(texts)
            return [
                "vectors": .array(vectors.map { .array($0.map { .number(Double($0)) }) }), "model": .string(embedder.name),
                "dimension": .integer(Int64(vectors.first?.count ?? 0)),
            ]

        case .stats(let namespace):
            let stats = try await namespaces.withNamespace(
                directory: directory(namespace), dimension: nil, embedder: embedder.name, create: false
            ) { store in store.stats() }
            // Which kernels run here (they differ by CPU family: docs/architecture.md), under the
            // names the benchmarks print: blas_kernels, encoder_kernels, vector_kernels.
            var kernels = embedder.kernels.mapValues(JSONValue.string)
            kernels["vector_kernels"] = .string(VectorIndex.defaultKernelPath)
            var answer: [String: JSONValue]
            if let stats {
                answer = [
                    "namespace": .string(namespace), "count": .integer(Int64(stats.count)), "dimension": .integer(Int64(stats.dimension)),
                    "embedder": .string(stats.embedder), "bytes": .integer(Int64(stats.vectorBytes + stats.logBytes + stats.snapshotBytes)),
                    "last_compaction": stats.lastCompaction.map { .number($0) } ?? .null,
                    "compaction_error": stats.compactionFailure.map { .string($0) } ?? .null,
                    "write_error": stats.writeFailure.map { .string($0) } ?? .null,
                ]
            } else {
                answer = ["namespace": .string(namespace), "count": 0, "dimension": nil, "bytes": 0, "last_compaction": nil]
            }
            answer.merge(kernels) { current, _ in current }
            return .object(answer)
        }
    }

    private func directory(_ namespace: String) -> String {
        configuration.directory + "/" + namespace
    }

    static func attributes(_ metadata: JSONValue) -> [String: String] {
        var attributes: [String: String] = [:]
        for (name, value) in metadata.objectValue ?? [:] {
            if let encoded = MemoryRequest.attributeValue(value) { attributes[name] = encoded }
        }
        return attributes
    }

    static func describe(_ memory: StoredMemory, distance: Float?) -> JSONValue {
        var object: [String: JSONValue] = [
            "key": .string(memory.key), "content": .string(memory.content),
            "metadata": (try? JSONValue.parse(memory.metadata)) ?? [:],
        ]
        if let distance { object["distance"] = .number(Double(distance)) }
        return .object(object)
    }
}

import MemoryStore
import Synchronization
import CurlHTTP
import WorkerJSON
import WorkerRuntime

/// Stores texts with their embeddings and finds the nearest ones (`Handlers/Memory`).
struct MemoryHandler: RawJobHandler {
    let configuration: MemoryConfiguration
    let embedder: any TextEmbedder
    private let namespaces = NamespaceCache()

    init(configuration: MemoryConfiguration, embedder: (any TextEmbedder)? = nil) {
        self.configuration = configuration
        self.embedder = embedder ?? configuration.embeddings.map {
            OpenAIEmbedder(upstream: $0, model: configuration.embeddingsModel, client: CurlHTTPClient(name: "embeddings"))
                as any TextEmbedder
        } ?? OfflineEmbedder()
    }

    /// The data directory must be usable before the worker takes jobs.
    func start() async throws {
        do {
            try MemoryNamespace.prepareDirectory(configuration.directory)
        } catch {
            throw MemoryInputError("MEMORY_DIR \(configuration.directory) cannot be used: \(error)")
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
                for (position, index) in toEmbed.enumerated() { vectors[index] = embedded[position] }
            }
            let dimension = vectors[0]!.count
            if let bad = vectors.firstIndex(where: { $0!.count != dimension }) {
                throw MemoryInputError("item \(bad) has a \(vectors[bad]!.count)-dimensional vector; item 0 has \(dimension)")
            }
            let store = try open(namespace, dimension: dimension, create: true)!
            let memories = zip(items, vectors).map { item, vector in
                StoredMemory(
                    key: item.key, content: item.content, metadata: (try? item.metadata.jsonString()) ?? "{}",
                    attributes: Self.attributes(item.metadata), vector: vector!)
            }
            try await store.store(memories)
            return ["stored": .integer(Int64(items.count)), "keys": .array(items.map { .string($0.key) }), "namespace": .string(namespace)]

        case .retrieve(let namespace, let query, let vector, let k, let filter):
            var queryVector = vector
            if let query { queryVector = try await embedder.embed([query])[0] }
            guard let store = try open(namespace, dimension: queryVector!.count, create: false) else { return ["memories": []] }
            let found = try store.retrieve(queryVector!, k: k, filter: filter)
            return ["memories": .array(found.map { memory, distance in Self.describe(memory, distance: distance) })]

        case .get(let namespace, let key):
            guard let memory = try open(namespace, dimension: nil, create: false)?.get(key) else {
                return ["found": false, "memory": nil]
            }
            return ["found": true, "memory": Self.describe(memory, distance: nil)]

        case .delete(let namespace, let key):
            guard let store = try open(namespace, dimension: nil, create: false) else { return ["deleted": false] }
            return ["deleted": .bool(try await store.delete(key))]

        case .stats(let namespace):
            guard let store = try open(namespace, dimension: nil, create: false) else {
                return ["namespace": .string(namespace), "count": 0, "dimension": nil, "bytes": 0, "last_compaction": nil]
            }
            let stats = store.stats()
            return [
                "namespace": .string(namespace), "count": .integer(Int64(stats.count)), "dimension": .integer(Int64(stats.dimension)),
                "embedder": .string(stats.embedder), "bytes": .integer(Int64(stats.vectorBytes + stats.logBytes + stats.snapshotBytes)),
                "last_compaction": stats.lastCompaction.map { .number($0) } ?? .null,
            ]
        }
    }

    private func open(_ namespace: String, dimension: Int?, create: Bool) throws -> MemoryNamespace? {
        try namespaces.open(directory: configuration.directory + "/" + namespace, dimension: dimension, embedder: embedder.name, create: create)
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

/// Open namespaces, one per directory, shared by all jobs of the process.
final class NamespaceCache: Sendable {
    private let open = Mutex<[String: MemoryNamespace]>([:])

    /// The namespace in `directory`; nil when it does not exist and `create` is false. Its recorded
    /// dimension and embedder must match (a clear error otherwise).
    func open(directory: String, dimension: Int?, embedder: String, create: Bool) throws -> MemoryNamespace? {
        try open.withLock { cache throws -> MemoryNamespace? in
            if let existing = cache[directory] {
                if let dimension, dimension != existing.dimension {
                    throw MemoryInputError(
                        "the namespace holds \(existing.dimension)-dimensional vectors (\(existing.embedder)); this one has \(dimension)")
                }
                return existing
            }
            let layout = try MemoryNamespace.layout(of: directory)
            guard layout != nil || create else { return nil }
            if let layout, layout.embedder != embedder {
                throw MemoryInputError(
                    "the namespace was built with the embedder \(layout.embedder); this worker uses \(embedder). "
                        + "Use another namespace, or configure the same embedder")
            }
            guard let size = layout?.dimension ?? dimension else { return nil }
            if let dimension, dimension != size {
                throw MemoryInputError("the namespace holds \(size)-dimensional vectors (\(embedder)); this one has \(dimension)")
            }
            let namespace = try MemoryNamespace(directory: directory, dimension: size, embedder: embedder)
            cache[directory] = namespace
            return namespace
        }
    }

}

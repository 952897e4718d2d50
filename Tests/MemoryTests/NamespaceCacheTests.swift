import Foundation
import Synchronization
import Testing
import TestSupport
import WorkerJSON

@testable import Memory
@testable import MemoryStore

@Suite("Open namespaces", .defaultPass)
struct NamespaceCacheTests {
    func root() -> String { NSTemporaryDirectory() + "namespace-cache-\(UUID().uuidString)" }

    func item(_ key: String) -> StoredMemory {
        StoredMemory(key: key, content: key, metadata: "{}", attributes: [:], vector: [1, 2])
    }

    @Test("beyond the limit, idle namespaces are closed least recently used first and reopen with their data")
    func evictsIdle() async throws {
        let base = root()
        defer { try? FileManager.default.removeItem(atPath: base) }
        let cache = NamespaceCache(limit: 2)
        for name in ["a", "b", "c"] {
            _ = try await cache.withNamespace(directory: base + "/" + name, dimension: 2, embedder: "e", create: true) { store in
                try await store.store([item(name)])
            }
        }
        #expect(cache.openNamespaces == 2)
        // Each open namespace holds its log and its lock file; "a" was closed to make room for "c".
        #expect(ProcessGauges.descriptors(under: base) == 4)
        #expect(ProcessGauges.descriptors(under: base + "/a/") == 0)
        let found = try await cache.withNamespace(directory: base + "/a", dimension: nil, embedder: "e", create: false) { $0.get("a") }
        #expect(found??.content == "a")
        #expect(cache.openNamespaces == 2)
        #expect(ProcessGauges.descriptors(under: base) == 4, "the namespace closed to make room released its files")
        #expect(ProcessGauges.descriptors(under: base + "/b/") == 0)
    }

    @Test("when every open namespace is in use, another is an error naming the limit, not a wait or a crash")
    func allInUse() async throws {
        let base = root()
        defer { try? FileManager.default.removeItem(atPath: base) }
        let cache = NamespaceCache(limit: 1)
        let holding = AsyncSignalBox()
        let release = AsyncSignalBox()
        let holder = Task {
            try await cache.withNamespace(directory: base + "/busy", dimension: 2, embedder: "e", create: true) { _ in
                holding.open()
                await release.wait()
            }
        }
        await holding.wait()
        do {
            _ = try await cache.withNamespace(directory: base + "/other", dimension: 2, embedder: "e", create: true) { _ in }
            Issue.record("a second namespace opened past the limit of 1")
        } catch {
            #expect("\(error)".contains("MEMORY_MAX_OPEN_NAMESPACES"))
        }
        release.open()
        _ = try await holder.value
        _ = try await cache.withNamespace(directory: base + "/other", dimension: 2, embedder: "e", create: true) { _ in }
    }

    @Test("a namespace being opened holds up neither requests to open ones nor other openings")
    func opensOutsideTheLock() async throws {
        let base = root()
        defer { try? FileManager.default.removeItem(atPath: base) }
        let opening = AsyncSignalBox()
        let proceed = DispatchSemaphore(value: 0)
        let cache = NamespaceCache(limit: 8) { directory, dimension, embedder, create in
            if directory.hasSuffix("/slow") {
                opening.open()
                proceed.wait()
            }
            return try NamespaceCache.openFromDisk(directory: directory, dimension: dimension, embedder: embedder, create: create)
        }
        _ = try await cache.withNamespace(directory: base + "/open", dimension: 2, embedder: "e", create: true) { try await $0.store([item("x")]) }
        let slow = Task { try await cache.withNamespace(directory: base + "/slow", dimension: 2, embedder: "e", create: true) { $0.count } }
        let waiter = Task { try await cache.withNamespace(directory: base + "/slow", dimension: 2, embedder: "e", create: true) { $0.count } }
        await opening.wait()
        // While "slow" is stuck opening: the open namespace answers, and another opens.
        #expect(try await cache.withNamespace(directory: base + "/open", dimension: nil, embedder: "e", create: false) { $0.count } == 1)
        #expect(try await cache.withNamespace(directory: base + "/new", dimension: 2, embedder: "e", create: true) { $0.count } == 0)
        proceed.signal()
        #expect(try await slow.value == 0)
        #expect(try await waiter.value == 0)
        #expect(cache.openNamespaces == 3)
    }

    @Test("a namespace created by a request that then fails is closed and its directory removed")
    func failedCreation() async throws {
        let base = root()
        defer { try? FileManager.default.removeItem(atPath: base) }
        let cache = NamespaceCache(limit: 4)
        struct Refused: Error {}
        await #expect(throws: Refused.self) {
            try await cache.withNamespace(directory: base + "/fresh", dimension: 2, embedder: "e", create: true) { _ in throw Refused() }
        }
        #expect(!FileManager.default.fileExists(atPath: base + "/fresh"))
        #expect(cache.openNamespaces == 0)
        // One with data is kept whatever fails later.
        _ = try await cache.withNamespace(directory: base + "/kept", dimension: 2, embedder: "e", create: true) { try await $0.store([item("x")]) }
        await #expect(throws: Refused.self) {
            try await cache.withNamespace(directory: base + "/kept", dimension: 2, embedder: "e", create: true) { _ in throw Refused() }
        }
        #expect(FileManager.default.fileExists(atPath: base + "/kept/snapshot.bin"))
    }
}

/// Thousands of tenants: the process holds a bounded number of namespaces open, so memory and
/// descriptors stay bounded however many exist on the volume.
@Suite("Many namespaces", .tags(.heavy), .pass(.heavy))
struct ManyNamespacesTests {
    @Test("2,000 namespaces, one item each: open namespaces, descriptors and resident memory stay bounded; all answer")
    func twoThousand() async throws {
        let directory = NSTemporaryDirectory() + "memory-tenants-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var configuration = MemoryConfiguration(directory: directory, embeddings: nil, embeddingsModel: "m")
        configuration.maxOpenNamespaces = 256
        let memory = MemoryHandler(configuration: configuration)
        try await memory.start()
        let resident = ProcessGauges.residentBytes
        for tenant in 0..<2000 {
            let request: JSONValue = ["action": "store", "namespace": .string("tenant-\(tenant)"), "key": "k", "content": .string("tenant \(tenant)")]
            _ = try await memory.run(try MemoryRequest.parse(request))
        }
        #expect(memory.openNamespaces <= 256)
        // Each open namespace holds its log and lock file; nothing else stays open.
        let descriptors = ProcessGauges.descriptors(under: directory)
        let addedResident = ProcessGauges.residentBytes - resident
        #expect(descriptors <= 2 * 256, "\(descriptors) descriptors on the memory directory")
        #expect(addedResident < 256 << 20, "\(addedResident >> 20) MB more resident")
        for tenant in [0, 1, 999, 1999] {
            let request: JSONValue = ["action": "get", "namespace": .string("tenant-\(tenant)"), "key": "k"]
            #expect(try await memory.run(try MemoryRequest.parse(request))["memory"]?["content"] == .string("tenant \(tenant)"))
        }
    }
}

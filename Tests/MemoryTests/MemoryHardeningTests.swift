import Foundation
import Synchronization
import Testing
import TestSupport
import WorkerJSON
import WorkerRuntime

@testable import Memory
@testable import MemoryStore

/// Input the index cannot hold is refused before anything is written, names are one thing on disk
/// and in memory, and the data directory is checked up front.
@Suite("The memory handler's edges", .defaultPass)
struct MemoryHardeningTests {
    func handler(directory: String = NSTemporaryDirectory() + "memory-edges-\(UUID().uuidString)", embedder: (any TextEmbedder)? = nil)
        -> (MemoryHandler, String)
    {
        (MemoryHandler(configuration: MemoryConfiguration(directory: directory, embeddings: nil, embeddingsModel: "m"), embedder: embedder), directory)
    }

    func run(_ handler: MemoryHandler, _ input: JSONValue) async throws -> JSONValue {
        try await handler.run(try MemoryRequest.parse(input))
    }

    func expectRefused(_ handler: MemoryHandler, _ input: JSONValue, naming text: String, sourceLocation: SourceLocation = #_sourceLocation) async {
        do {
            _ = try await run(handler, input)
            Issue.record("accepted \(input)", sourceLocation: sourceLocation)
        } catch {
            #expect("\(error)".contains(text), "\(error)", sourceLocation: sourceLocation)
        }
    }

    @Test("a vector whose squared length float32 cannot hold is refused naming the field; nothing is stored or created")
    func hugeVector() async throws {
        let (memory, directory) = handler()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        await expectRefused(memory, ["action": "store", "key": "a", "content": "x", "vector": [3e38, 3e38]], naming: "input.vector has a squared length")
        await expectRefused(
            memory, ["action": "store_batch", "items": [["key": "a", "content": "x", "vector": [1, 1]], ["key": "b", "content": "y", "vector": [2e18, 0]]]],
            naming: "input.items[1].vector")
        await expectRefused(memory, ["action": "retrieve", "vector": [3e38, 3e38]], naming: "input.vector")
        #expect(!FileManager.default.fileExists(atPath: directory + "/default"))
        // Overwriting an existing key this way keeps the old content, and says why.
        _ = try await run(memory, ["action": "store", "key": "a", "content": "old", "vector": [1, 1]])
        await expectRefused(memory, ["action": "store", "key": "a", "content": "new", "vector": [3e38, 3e38]], naming: "squared length")
        #expect(try await run(memory, ["action": "get", "key": "a"])["memory"]?["content"] == "old")
    }

    @Test("an embedder's vector the index cannot hold is refused naming the item")
    func hugeEmbedding() async throws {
        struct Huge: TextEmbedder {
            let name = "huge"
            func embed(_ texts: [String]) async throws -> [[Float]] { texts.map { _ in [3e38, 3e38] } }
            func shutdown() async {}
        }
        let (memory, directory) = handler(embedder: Huge())
        defer { try? FileManager.default.removeItem(atPath: directory) }
        await expectRefused(memory, ["action": "store", "key": "a", "content": "x"], naming: "the embedding of input item 0")
        #expect(try await run(memory, ["action": "stats"])["count"] == 0)
    }

    @Test("\"café\" typed as NFC or NFD is one key and one namespace, in memory, on disk and after a restart")
    func unicodeEquivalence() async throws {
        let nfc = "caf\u{E9}"
        let nfd = "cafe\u{301}"
        let (memory, directory) = handler()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        _ = try await run(memory, ["action": "store", "namespace": .string(nfd), "key": .string(nfd), "content": "first", "vector": [1, 0]])
        _ = try await run(memory, ["action": "store", "namespace": .string(nfc), "key": .string(nfc), "content": "second", "vector": [0, 1]])
        #expect(try await run(memory, ["action": "stats", "namespace": .string(nfd)])["count"] == 1)
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory).map { Array($0.utf8) } == [Array(nfc.utf8)])
        let (restarted, _) = handler(directory: directory)
        #expect(try await run(restarted, ["action": "get", "namespace": .string(nfd), "key": .string(nfd)])["memory"]?["content"] == "second")
        #expect(try await run(restarted, ["action": "stats", "namespace": .string(nfc)])["count"] == 1)
    }

    @Test(
        "namespace names: letters and digits of any script with - _ . ; no spaces, controls, separators or format characters",
        arguments: [
            ("a..b", true), ("tenant-1_x.v2", true), ("日本語", true), ("caf\u{E9}", true), (" ", false), ("a b", false),
            ("\u{202E}abc", false), ("a\u{2028}b", false), ("a\u{200B}b", false), ("..", false), (".", false), (".hidden", false),
            ("a/b", false), ("a\\b", false), ("a\u{0}b", false), ("", false), (String(repeating: "n", count: 129), false),
            (String(repeating: "n", count: 128), true),
        ])
    func namespaceNames(name: String, accepted: Bool) {
        let parsed = Result { () throws(MemoryInputError) in try MemoryRequest.namespace(.string(name)) }
        switch parsed {
        case .success(let kept): #expect(accepted && kept == name, "\(name.unicodeScalars.map(\.value)) was accepted")
        case .failure(let error):
            #expect(!accepted, "\(name.unicodeScalars.map(\.value)) was refused: \(error)")
            #expect(error.description.contains("input.namespace"))
        }
    }

    @Test("filter values compare as values: 1e15 matches 1000000000000000, 2.0 matches 2, NFD matches NFC")
    func canonicalFilter() async throws {
        let (memory, directory) = handler()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let stored = try JSONValue.parse(#"{"action":"store","key":"a","content":"x","vector":[1,0],"metadata":{"n":1000000000000000,"m":2.0,"s":"caf\u00e9"}}"#)
        _ = try await run(memory, stored)
        for filter in [#"{"n":1e15}"#, #"{"n":1000000000000000.0}"#, #"{"m":2}"#, #"{"s":"cafe\u0301"}"#] {
            let request = try JSONValue.parse(#"{"action":"retrieve","vector":[1,0],"filter":\#(filter)}"#)
            #expect(try await run(memory, request)["memories"]?.arrayValue?.count == 1, "\(filter)")
        }
        let miss = try JSONValue.parse(#"{"action":"retrieve","vector":[1,0],"filter":{"n":1e15,"m":2.5}}"#)
        #expect(try await run(memory, miss)["memories"]?.arrayValue?.count == 0)
    }

    @Test("MEMORY_DIR naming a regular file fails the worker's start with a message naming it")
    func directoryIsAFile() async throws {
        let file = NSTemporaryDirectory() + "memory-file-\(UUID().uuidString)"
        FileManager.default.createFile(atPath: file, contents: Data("x".utf8))
        defer { unlink(file) }
        let (memory, _) = handler(directory: file)
        do {
            try await memory.start()
            Issue.record("started on a regular file")
        } catch {
            #expect("\(error)".contains("MEMORY_DIR \(file)"))
            #expect("\(error)".contains("not a directory"))
        }
    }

    @Test("MEMORY_MAX_OPEN_NAMESPACES is read and checked")
    func openLimitConfiguration() throws {
        #expect(try MemoryConfiguration.fromEnvironment([:], volumeExists: false).maxOpenNamespaces == 256)
        #expect(try MemoryConfiguration.fromEnvironment(["MEMORY_MAX_OPEN_NAMESPACES": "8"], volumeExists: false).maxOpenNamespaces == 8)
        for bad in ["0", "-1", "lots", "1000001"] {
            #expect(throws: ConfigurationError.self) { try MemoryConfiguration.fromEnvironment(["MEMORY_MAX_OPEN_NAMESPACES": bad]) }
        }
    }
}

/// The full-disk case at the handler: a first store that fails leaves no namespace behind.
@Suite("The memory handler on a full disk", .defaultPass, .enabled(if: SmallVolume.mountable, "\(SmallVolume.refusedMessage)"))
struct MemoryFullDiskTests {
    @Test("a first store that fails on a full disk leaves no directory; once space is freed the same store works")
    func failedFirstStore() async throws {
        let volume = try SmallVolume(bytes: 256 * 1024)
        defer { volume.unmount() }
        let configuration = MemoryConfiguration(directory: volume.path + "/memory", embeddings: nil, embeddingsModel: "m")
        let memory = MemoryHandler(configuration: configuration)
        try await memory.start()
        let filler = volume.fill(leaving: 0)
        let store: JSONValue = ["action": "store", "namespace": "fresh", "key": "a", "content": "x", "vector": [1, 2]]
        await #expect(throws: (any Error).self) { try await memory.run(try MemoryRequest.parse(store)) }
        #expect(!FileManager.default.fileExists(atPath: configuration.directory + "/fresh"))
        unlink(filler)
        #expect(try await memory.run(try MemoryRequest.parse(store))["stored"] == 1)
    }
}

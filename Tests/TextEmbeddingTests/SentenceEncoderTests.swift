#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif
import Synchronization
import Testing
import TestSupport
import WorkerJSON

import CEncoderKernels

@testable import TextEmbedding

/// The model directory `scripts/fetch-model.sh` unpacks (the test command runs it first).
enum TestModel {
    static let directory = TestEmbeddingsModel.directory

    /// Loaded with the best kernels, never while a test has asked for others.
    static let encoder: Result<SentenceEncoder, EmbeddingModelError> = Result { () throws(EmbeddingModelError) in
        try KernelLevel.withLevel(0) { () throws(EmbeddingModelError) in try SentenceEncoder(directory: directory) }
    }

    static func load() throws -> SentenceEncoder {
        do {
            return try encoder.get()
        } catch {
            throw TestModelMissing(description: "\(error) — run scripts/fetch-model.sh")
        }
    }

    struct Case {
        let text: String
        let ids: [Int32]
        let embedding: [Float]
    }

    /// Made by Fixtures/make_reference.py with Hugging Face's tokenizers and sentence-transformers.
    static let reference: [Case] = {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/reference.json")
        let json = try! JSONValue.parse(Array(try! Data(contentsOf: url)))
        return json["cases"]!.arrayValue!.map { item in
            Case(
                text: item["text"]!.stringValue!, ids: item["ids"]!.arrayValue!.map { Int32($0.intValue!) },
                embedding: item["embedding"]!.arrayValue!.map { Float($0.doubleValue!) })
        }
    }()
}

struct TestModelMissing: Error, CustomStringConvertible {
    let description: String
}

func cosine(_ a: [Float], _ b: [Float]) -> Double {
    var dot = 0.0, left = 0.0, right = 0.0
    for index in a.indices {
        dot += Double(a[index]) * Double(b[index])
        left += Double(a[index]) * Double(a[index])
        right += Double(b[index]) * Double(b[index])
    }
    return dot / (left.squareRoot() * right.squareRoot())
}

@Suite("Sentence encoder: all-MiniLM-L6-v2 against Hugging Face's own output", .tags(.heavy), .pass(.heavy))
struct SentenceEncoderTests {
    @Test("token ids equal Hugging Face's tokenizer's for every reference text")
    func tokenIDs() throws {
        let encoder = try TestModel.load()
        #expect(TestModel.reference.count >= 18)
        for reference in TestModel.reference {
            #expect(encoder.tokenize(reference.text) == reference.ids, "\(reference.text.prefix(60))")
        }
    }

    @Test("embeddings (on AMX in bfloat16 where the CPU has it) have cosine similarity ≥ 0.9999 to sentence-transformers' for every reference text, batched or alone")
    func embeddings() throws {
        let encoder = try TestModel.load()
        #expect(encoder.dimension == 384)
        #expect(encoder.name == "all-MiniLM-L6-v2")
        let texts = TestModel.reference.map(\.text)
        let batched = encoder.embed(texts)
        for (index, reference) in TestModel.reference.enumerated() {
            let similarity = cosine(batched[index], reference.embedding)
            #expect(similarity >= 0.9999, "\(reference.text.prefix(60)): \(similarity)")
        }
        // One at a time, on one thread: the same vectors (packing sequences never mixes them). In
        // bfloat16 a last-bit difference upstream (OpenBLAS sums attention in another order for
        // another number of rows) can round a value to the next bfloat16, so there the bound is
        // the accuracy one; mixing sequences would be far below either.
        // AMX is used wherever the CPU and the kernel allow it.
        #expect(encoder.encoder.usesBFloat16 == KernelLevel.withBestKernels { ek_amx_available() != 0 })
        if let expected = encoder.encoder.usesBFloat16 ? "amx-bf16" : CPUKernels.path(level: 3) {
            #expect(encoder.kernelPath == expected)
        }
        let bound = encoder.encoder.usesBFloat16 ? 0.9999 : 0.999999
        for (index, text) in texts.enumerated().prefix(6) {
            let alone = encoder.embed([text], threads: 1)[0]
            #expect(cosine(alone, batched[index]) >= bound)
        }
        #expect(encoder.embed([]).isEmpty)
    }

    @Test(
        "the other kernels give the same embeddings, batched or alone, and say which they are: AVX-512 in float32 (CPUs without AMX), AVX2 with FMA, portable C with OpenBLAS",
        arguments: [(3, "AVX-512"), (2, "AVX2"), (1, "portable")])
    func otherKernels(level: Int32, name: String) throws {
        _ = try TestModel.load()
        let texts = TestModel.reference.map(\.text)
        // Alone, the texts are 2 to 256 tokens: every count of rows left over after the kernels'
        // full tiles (of 6 rows for AVX2, 12 for AVX-512), and rows past a block.
        let (encoder, batched, alone) = try KernelLevel.withLevel(level) { () throws(EmbeddingModelError) in
            let encoder = try SentenceEncoder(directory: TestModel.directory)
            return (encoder, encoder.embed(texts), texts.map { encoder.embed([$0], threads: 1)[0] })
        }
        if let expected = CPUKernels.path(level: level) {
            #expect(encoder.kernelPath == expected, "\(name)")
        }
        for (index, reference) in TestModel.reference.enumerated() {
            #expect(cosine(batched[index], reference.embedding) >= 0.9999, "\(name): \(reference.text.prefix(60))")
            #expect(cosine(alone[index], reference.embedding) >= 0.9999, "\(name) alone: \(reference.text.prefix(60))")
            #expect(cosine(alone[index], batched[index]) >= 0.999999, "\(name) alone and batched: \(reference.text.prefix(60))")
        }
    }

    @Test("paraphrases that share few words are nearer than unrelated texts")
    func semantics() throws {
        let encoder = try TestModel.load()
        let vectors = encoder.embed(["car", "automobile", "banana", "deadline for the sales report",
                                     "the quarterly sales numbers are due Friday", "my cat sleeps all day"])
        #expect(cosine(vectors[0], vectors[1]) > cosine(vectors[0], vectors[2]) + 0.2)
        #expect(cosine(vectors[3], vectors[4]) > cosine(vectors[3], vectors[5]) + 0.2)
    }
}

/// The linear layers' kernels each level should load a model onto, from the CPU's flags as Linux
/// lists them (not the kernels' own CPUID checks); nil where there is no /proc/cpuinfo.
enum CPUKernels {
    static let flags: Set<String>? = {
        guard let file = fopen("/proc/cpuinfo", "r") else { return nil }
        defer { fclose(file) }
        var line: UnsafeMutablePointer<CChar>?
        var capacity = 0
        defer { free(line) }
        while getline(&line, &capacity, file) > 0, let text = line.map({ String(cString: $0) }) {
            guard text.hasPrefix("flags") else { continue }
            return Set(text.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" }).map { String($0) })
        }
        return nil
    }()

    /// Level 3: AVX-512 without AMX; 2: at most AVX2; 1: portable (OpenBLAS for the linear layers).
    static func path(level: Int32) -> String? {
        guard let flags else { return nil }
        let avx512 = ["avx512f", "avx512dq", "avx512bw", "avx512vl"].allSatisfy { flags.contains($0) }
        let avx2 = flags.contains("avx2") && flags.contains("fma")
        if level == 3, avx512 { return "avx512-panels" }
        if level >= 2, avx2 { return "avx2-panels" }
        return "openblas-sgemm"
    }
}

/// One kernel level at a time: the level is process-wide, so tests that change it take turns.
enum KernelLevel {
    static let lock = Mutex<Void>(())

    static func withLevel<T>(_ level: Int32, _ body: () throws(EmbeddingModelError) -> T) throws(EmbeddingModelError) -> T {
        try lock.withLock { _ throws(EmbeddingModelError) -> T in
            ek_use_portable_kernels(level)
            defer { ek_use_portable_kernels(0) }
            return try body()
        }
    }

    static func withBestKernels<T>(_ body: () -> T) -> T {
        lock.withLock { _ in body() }
    }
}

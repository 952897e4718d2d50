#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import Synchronization
import Testing

@testable import TextEmbedding

/// Damage that used to load: a model that starts, answers `/ping`, and then embeds wrong vectors
/// or fails every job, or a special file that hangs start-up.
extension ModelDirectoryTests {
    @Test("a vocab.txt of another length than vocab_size (cut to 200 lines, one line short, one extra) is refused, naming both sizes")
    func vocabularySize() throws {
        let lines = try String(contentsOfFile: TestModel.directory + "/vocab.txt", encoding: .utf8)
            .split(separator: "\n", omittingEmptySubsequences: false).dropLast()  // the final newline's empty rest
        #expect(lines.count == 30522)
        for (kept, extra) in [(200, ""), (30521, ""), (30522, "[EXTRA]\n")] {
            let text = lines.prefix(kept).joined(separator: "\n") + "\n" + extra
            let directory = try copy { directory in try write(text, "\(directory)/vocab.txt") }
            let message = try #require(loadError(directory), "\(kept) lines")
            let count = kept + (extra.isEmpty ? 0 : 1)
            #expect(message.contains("vocab.txt") && message.contains("\(count) tokens") && message.contains("30522"), "\(message)")
        }
    }

    @Test("vocab.txt and vocab_size that agree with each other but not with the embedding matrix's rows are refused")
    func vocabularyRows() throws {
        let config = try String(contentsOfFile: TestModel.directory + "/config.json", encoding: .utf8)
        let vocabulary = try String(contentsOfFile: TestModel.directory + "/vocab.txt", encoding: .utf8)
            .split(separator: "\n", omittingEmptySubsequences: false).prefix(30000).joined(separator: "\n") + "\n"
        let directory = try copy { directory in
            try write(config.replacing("\"vocab_size\": 30522", with: "\"vocab_size\": 30000"), "\(directory)/config.json")
            try write(vocabulary, "\(directory)/vocab.txt")
        }
        let message = try #require(loadError(directory))
        #expect(message.contains("embeddings.word_embeddings.weight") && message.contains("[30522, 384]"), "\(message)")
    }

    @Test("configuration values that cannot work are refused, naming the file and the field")
    func configurationValues() throws {
        let original = try String(contentsOfFile: TestModel.directory + "/config.json", encoding: .utf8)
        /// config.json with `key`'s value `old` replaced by `new`.
        func config(_ key: String, _ old: String, _ new: String) -> String {
            original.replacing("\"\(key)\": \(old)", with: "\"\(key)\": \(new)")
        }
        let cases: [(file: String, content: String, field: String)] = [
            ("config.json", config("layer_norm_eps", "1e-12", "-1e-12"), "layer_norm_eps"),
            ("config.json", config("layer_norm_eps", "1e-12", "0"), "layer_norm_eps"),
            // Below float32's range: zero once converted.
            ("config.json", config("layer_norm_eps", "1e-12", "1e-50"), "layer_norm_eps"),
            ("config.json", config("layer_norm_eps", "1e-12", "\"small\""), "layer_norm_eps"),
            ("config.json", config("num_attention_heads", "12", "0"), "num_attention_heads"),
            ("config.json", config("intermediate_size", "1536", "-1536"), "intermediate_size"),
            ("config.json", config("max_position_embeddings", "512", "2"), "max_position_embeddings"),
            // A value given but unusable is an error, not replaced by the default.
            ("config.json", config("type_vocab_size", "2", "\"2\""), "type_vocab_size"),
            ("config.json", config("hidden_size", "384", "768"), "word_embedding_dimension"),
            ("sentence_bert_config.json", #"{"max_seq_length": 0, "do_lower_case": false}"#, "max_seq_length"),
            ("tokenizer_config.json", "{not json", "tokenizer_config.json is not valid"),
        ]
        for (file, content, field) in cases {
            let directory = try copy { directory in try write(content, "\(directory)/\(file)") }
            let message = try #require(loadError(directory), "\(file): \(field)")
            let named = field == "word_embedding_dimension" ? "1_Pooling/config.json" : file
            #expect(message.contains(named) && message.contains(field), "\(message)")
        }
    }

    @Test("a NaN or infinite weight is refused, naming the file, the tensor and the element, even in a row no test text uses")
    func nonFiniteWeights() throws {
        let cases: [(tensor: String, element: Int, value: Float)] = [
            // Token 20,000's row: only texts with that token would have turned NaN.
            ("embeddings.word_embeddings.weight", 20_000 * 384 + 17, .nan),
            ("encoder.layer.2.attention.self.query.weight", 5, .infinity),
            ("embeddings.LayerNorm.bias", 3, -.infinity),
        ]
        for (tensor, element, value) in cases {
            let directory = try copy { directory in try patchWeights(in: directory, [(tensor, element, [value])]) }
            let message = try #require(loadError(directory), "\(tensor)")
            #expect(
                message.contains("model.safetensors") && message.contains(tensor) && message.contains("element \(element)")
                    && message.contains("\(value)"),
                "\(message)")
        }
    }

    @Test("weights that pass every file check but make a zero vector fail the test embedding at load")
    func failedProbe() throws {
        // The last LayerNorm's scale and shift zeroed: every hidden state, so every embedding, is 0.
        let zeros = [Float](repeating: 0, count: 384)
        let directory = try copy { directory in
            try patchWeights(
                in: directory,
                [("encoder.layer.5.output.LayerNorm.weight", 0, zeros), ("encoder.layer.5.output.LayerNorm.bias", 0, zeros)])
        }
        let message = try #require(loadError(directory))
        #expect(message.contains("test embedding") && message.contains("length 0"), "\(message)")
    }

    @Test(
        "a FIFO, a directory or a device in place of a model file is refused at once, naming the file; the load never blocks",
        arguments: [
            ("model.safetensors", "fifo"), ("vocab.txt", "fifo"), ("tokenizer_config.json", "fifo"), ("config.json", "directory"),
            ("vocab.txt", "device"),
        ])
    func specialFiles(file: String, kind: String) async throws {
        let directory = try copy { directory in
            let path = "\(directory)/\(file)"
            try FileManager.default.removeItem(atPath: path)
            switch kind {
            case "fifo": guard mkfifo(path, 0o600) == 0 else { throw DamageSetupFailed("mkfifo \(path)") }
            case "directory": try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)
            default: try FileManager.default.createSymbolicLink(atPath: path, withDestinationPath: "/dev/zero")
            }
        }
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let expected = ["fifo": "a FIFO", "directory": "a directory", "device": "a character device"][kind]!
        switch await loadOutcome(directory, within: .seconds(10)) {
        case .failed(let message):
            #expect(message.contains("\(directory)/\(file) is \(expected)") && message.contains("not a regular file"), "\(message)")
        case .loaded:
            Issue.record("a model with \(file) a \(kind) loaded")
        case .timedOut:
            // Let a reader blocked in open(2) go (it sees an empty pipe), then fail.
            let writer = open("\(directory)/\(file)", O_WRONLY | O_NONBLOCK)
            if writer >= 0 { close(writer) }
            Issue.record("loading a model with \(file) a \(kind) still ran after 10 s")
        }
    }

    /// Writes each patch's values (little-endian float32) over elements `element...` of its tensor,
    /// in a copy of the weights that replaces the directory's link to the real file.
    func patchWeights(in directory: String, _ patches: [(tensor: String, element: Int, values: [Float])]) throws {
        let original = TestModel.directory + "/model.safetensors"
        let weights = try SafeTensors(path: original)
        let path = "\(directory)/model.safetensors"
        try FileManager.default.removeItem(atPath: path)
        try FileManager.default.copyItem(atPath: original, toPath: path)
        let descriptor = open(path, O_WRONLY)
        guard descriptor >= 0 else { throw DamageSetupFailed("open \(path)") }
        defer { close(descriptor) }
        for (tensor, element, values) in patches {
            let entry = try #require(weights.entries[tensor], "\(tensor)")
            try #require(entry.dtype == "F32" && (element + values.count) * 4 <= entry.end - entry.start)
            var bytes: [UInt8] = []
            for value in values { withUnsafeBytes(of: value.bitPattern.littleEndian) { bytes.append(contentsOf: $0) } }
            let written = bytes.withUnsafeBytes { pwrite(descriptor, $0.baseAddress, $0.count, off_t(entry.start + element * 4)) }
            guard written == bytes.count else { throw DamageSetupFailed("pwrite \(path)") }
        }
    }

    enum LoadOutcome: Sendable {
        case loaded, failed(String), timedOut
    }

    /// Loads `directory` on a thread of its own and waits at most `timeout`: a load that blocks
    /// (opening a FIFO for reading waits for a writer) fails the test instead of hanging the run.
    func loadOutcome(_ directory: String, within timeout: Duration) async -> LoadOutcome {
        let once = FirstAnswer()
        return await withCheckedContinuation { (continuation: CheckedContinuation<LoadOutcome, Never>) in
            let answer: @Sendable (LoadOutcome) -> Void = { outcome in
                if once.claim() { continuation.resume(returning: outcome) }
            }
            DispatchQueue(label: "damaged-model-load").async {
                do throws(EmbeddingModelError) {
                    _ = try SentenceEncoder(directory: directory)
                    answer(.loaded)
                } catch {
                    answer(.failed(error.description))
                }
            }
            Task {
                try? await Task.sleep(for: timeout)
                answer(.timedOut)
            }
        }
    }
}

/// The first of several racing answers wins.
private final class FirstAnswer: Sendable {
    private let answered = Mutex(false)

    func claim() -> Bool {
        answered.withLock { answered in
            defer { answered = true }
            return !answered
        }
    }
}

private struct DamageSetupFailed: Error, CustomStringConvertible {
    let description: String

    init(_ what: String) {
        description = "\(what) failed: \(String(cString: strerror(errno)))"
    }
}

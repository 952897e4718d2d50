#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Testing
import TestSupport

@testable import TextEmbedding

/// Broken model directories: every one is a clear error at load, naming the file, never a crash.
@Suite("Sentence encoder: broken model directories", .tags(.heavy), .pass(.heavy))
struct ModelDirectoryTests {
    /// A copy of the test model (weights linked, not copied) that a test may damage.
    func copy(_ damage: (String) throws -> Void) throws -> String {
        let source = TestModel.directory
        _ = try TestModel.load()
        let target = FileManager.default.temporaryDirectory.appendingPathComponent("model-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: target + "/1_Pooling", withIntermediateDirectories: true)
        for name in ["config.json", "modules.json", "vocab.txt", "tokenizer_config.json", "sentence_bert_config.json", "1_Pooling/config.json"] {
            try FileManager.default.copyItem(atPath: "\(source)/\(name)", toPath: "\(target)/\(name)")
        }
        try FileManager.default.createSymbolicLink(atPath: "\(target)/model.safetensors", withDestinationPath: "\(source)/model.safetensors")
        try damage(target)
        return target
    }

    func loadError(_ directory: String) -> String? {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        do {
            _ = try SentenceEncoder(directory: directory)
            return nil
        } catch {
            return error.description
        }
    }

    func write(_ text: String, _ path: String) throws {
        try? FileManager.default.removeItem(atPath: path)
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
    }

    @Test("a truncated safetensors file names the file and the tensor past its end")
    func truncated() throws {
        let directory = try copy { directory in
            let path = "\(directory)/model.safetensors"
            let bytes = try Data(contentsOf: URL(fileURLWithPath: TestModel.directory + "/model.safetensors"))
            try FileManager.default.removeItem(atPath: path)
            try bytes.prefix(bytes.count / 2).write(to: URL(fileURLWithPath: path))
        }
        let message = try #require(loadError(directory))
        #expect(message.contains("model.safetensors") && message.contains("truncated"), "\(message)")
    }

    @Test("a corrupt safetensors header, an empty file, garbage")
    func corrupt() throws {
        for (content, expected) in [("", "empty"), ("\u{8}\0\0\0\0\0\0\0{garbage", "header"), ("\u{ff}\u{ff}\u{ff}\u{ff}\u{ff}\u{ff}\u{ff}\u{7f}", "header")] {
            let directory = try copy { directory in try write(content, "\(directory)/model.safetensors") }
            let message = try #require(loadError(directory))
            #expect(message.contains("model.safetensors") && message.contains(expected), "\(message)")
        }
    }

    @Test("a missing vocab, a missing weights file")
    func missing() throws {
        for name in ["vocab.txt", "model.safetensors", "config.json"] {
            let directory = try copy { directory in try FileManager.default.removeItem(atPath: "\(directory)/\(name)") }
            let message = try #require(loadError(directory))
            #expect(message.contains(name) && message.contains("missing"), "\(message)")
        }
    }

    @Test("another architecture, another activation, a shape that does not fit, an unknown module")
    func unsupported() throws {
        let config = try String(contentsOfFile: TestModel.directory + "/config.json", encoding: .utf8)
        let cases: [(String, String, String)] = [
            ("config.json", config.replacing("\"bert\"", with: "\"roberta\""), "model_type roberta"),
            ("config.json", config.replacing("\"gelu\"", with: "\"relu\""), "hidden_act relu"),
            ("config.json", config.replacing("\"intermediate_size\": 1536", with: "\"intermediate_size\": 3072"), "shape"),
            ("config.json", config.replacing("\"num_hidden_layers\": 6", with: "\"num_hidden_layers\": 7"), "encoder.layer.6"),
            ("modules.json", #"[{"type": "sentence_transformers.models.Transformer", "path": ""}, {"type": "sentence_transformers.models.Dense", "path": "2_Dense"}]"#, "Dense"),
            ("1_Pooling/config.json", #"{"pooling_mode_mean_sqrt_len_tokens": true}"#, "pooling"),
            ("config.json", "{not json", "config.json is not valid"),
        ]
        for (file, content, expected) in cases {
            let directory = try copy { directory in try write(content, "\(directory)/\(file)") }
            let message = try #require(loadError(directory), "\(file) with \(expected)")
            #expect(message.contains(expected), "\(message)")
        }
    }
}

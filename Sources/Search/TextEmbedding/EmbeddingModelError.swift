/// A model directory that cannot be used: the message names the file (and the tensor or field)
/// and what is wrong with it.
public struct EmbeddingModelError: Error, CustomStringConvertible, Sendable, Equatable {
    private enum Code: Equatable {
        case missingFile(String)
        case unreadable(String, String)
        case notRegularFile(String, String)
        case invalid(String, String)
        case unsupported(String, String)
        case missingTensor(String, String)
        case shapeMismatch(String, String, expected: [Int], got: [Int])
        case vocabularySize(String, lines: Int, configured: Int)
        case nonFinite(String, String, element: Int, value: String)
        case failedProbe(String, String)
    }

    private let code: Code

    static func missingFile(_ path: String) -> Self { Self(code: .missingFile(path)) }
    static func unreadable(_ path: String, _ reason: String) -> Self { Self(code: .unreadable(path, reason)) }
    /// `kind`: what is there instead ("a FIFO (named pipe)", "a directory").
    static func notRegularFile(_ path: String, _ kind: String) -> Self { Self(code: .notRegularFile(path, kind)) }
    static func invalid(_ path: String, _ reason: String) -> Self { Self(code: .invalid(path, reason)) }
    static func unsupported(_ path: String, _ what: String) -> Self { Self(code: .unsupported(path, what)) }
    static func missingTensor(_ file: String, _ name: String) -> Self { Self(code: .missingTensor(file, name)) }
    static func shapeMismatch(_ file: String, _ name: String, expected: [Int], got: [Int]) -> Self {
        Self(code: .shapeMismatch(file, name, expected: expected, got: got))
    }
    static func vocabularySize(_ path: String, lines: Int, configured: Int) -> Self {
        Self(code: .vocabularySize(path, lines: lines, configured: configured))
    }
    static func nonFinite(_ file: String, _ name: String, element: Int, value: Float) -> Self {
        Self(code: .nonFinite(file, name, element: element, value: "\(value)"))
    }
    /// The test embedding made at load (`directory`) came out wrong: `what` says how.
    static func failedProbe(_ directory: String, _ what: String) -> Self { Self(code: .failedProbe(directory, what)) }

    public var description: String {
        switch code {
        case .missingFile(let path):
            return "\(path) is missing: a sentence-transformers model directory needs config.json, model.safetensors, vocab.txt "
                + "and modules.json (scripts/fetch-model.sh fetches all-MiniLM-L6-v2)"
        case .unreadable(let path, let reason):
            return "\(path) cannot be read: \(reason)"
        case .notRegularFile(let path, let kind):
            return "\(path) is \(kind), not a regular file: it was not opened; put the file as published there "
                + "(a symbolic link to a regular file is fine)"
        case .invalid(let path, let reason):
            return "\(path) is not valid: \(reason)"
        case .unsupported(let path, let what):
            return "\(path): \(what) is not supported (BERT encoders only: model_type bert, hidden_act gelu, absolute positions)"
        case .missingTensor(let file, let name):
            return "\(file) has no tensor \(name): the weights do not belong to this BERT configuration"
        case .shapeMismatch(let file, let name, let expected, let got):
            return "\(file): tensor \(name) has shape \(got), the configuration needs \(expected)"
        case .vocabularySize(let path, let lines, let configured):
            return "\(path) has \(lines) tokens, but config.json's vocab_size (and the embedding matrix) has \(configured): "
                + "the file is truncated or belongs to another model; fetch the model directory again"
        case .nonFinite(let file, let name, let element, let value):
            return "\(file): tensor \(name) holds \(value) (not finite) at element \(element): the weights are damaged; "
                + "fetch the model directory again"
        case .failedProbe(let directory, let what):
            return "\(directory): a test embedding at load \(what): the weights or config.json are damaged; "
                + "fetch the model directory again"
        }
    }
}

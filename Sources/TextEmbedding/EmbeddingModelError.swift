/// A model directory that cannot be used: the message names the file (and the tensor) and what
/// is wrong with it.
public struct EmbeddingModelError: Error, CustomStringConvertible, Sendable, Equatable {
    private enum Code: Equatable {
        case missingFile(String)
        case unreadable(String, String)
        case invalid(String, String)
        case unsupported(String, String)
        case missingTensor(String, String)
        case shapeMismatch(String, String, expected: [Int], got: [Int])
    }

    private let code: Code

    static func missingFile(_ path: String) -> Self { Self(code: .missingFile(path)) }
    static func unreadable(_ path: String, _ reason: String) -> Self { Self(code: .unreadable(path, reason)) }
    static func invalid(_ path: String, _ reason: String) -> Self { Self(code: .invalid(path, reason)) }
    static func unsupported(_ path: String, _ what: String) -> Self { Self(code: .unsupported(path, what)) }
    static func missingTensor(_ file: String, _ name: String) -> Self { Self(code: .missingTensor(file, name)) }
    static func shapeMismatch(_ file: String, _ name: String, expected: [Int], got: [Int]) -> Self {
        Self(code: .shapeMismatch(file, name, expected: expected, got: got))
    }

    public var description: String {
        switch code {
        case .missingFile(let path):
            return "\(path) is missing: a sentence-transformers model directory needs config.json, model.safetensors, vocab.txt "
                + "and modules.json (scripts/fetch-model.sh fetches all-MiniLM-L6-v2)"
        case .unreadable(let path, let reason):
            return "\(path) cannot be read: \(reason)"
        case .invalid(let path, let reason):
            return "\(path) is not valid: \(reason)"
        case .unsupported(let path, let what):
            return "\(path): \(what) is not supported (BERT encoders only: model_type bert, hidden_act gelu, absolute positions)"
        case .missingTensor(let file, let name):
            return "\(file) has no tensor \(name): the weights do not belong to this BERT configuration"
        case .shapeMismatch(let file, let name, let expected, let got):
            return "\(file): tensor \(name) has shape \(got), the configuration needs \(expected)"
        }
    }
}

import Foundation

/// The embeddings model the tests run: `EMBEDDINGS_TEST_MODEL_DIR`, else where
/// `scripts/fetch-model.sh` unpacks it (the test command runs that first).
package enum TestEmbeddingsModel {
    package static let directory: String = {
        if let path = ProcessInfo.processInfo.environment["EMBEDDINGS_TEST_MODEL_DIR"] { return path }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return root.appendingPathComponent(".build/models/all-MiniLM-L6-v2").path
    }()
}

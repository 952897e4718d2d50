import Testing
import TestSupport

@testable import MemoryStore

@Suite("The offline embedder", .defaultPass)
struct HashedEmbedderTests {
    let embedder = HashedEmbedder()

    func distance(_ a: [Float], _ b: [Float]) -> Float { zip(a, b).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) } }

    @Test("deterministic, 384 dimensions, unit length")
    func shape() throws {
        let vector = try embedder.embed("The quick brown fox")
        #expect(vector.count == 384)
        #expect(abs(vector.reduce(0) { $0 + $1 * $1 } - 1) < 1e-5)
        #expect(try embedder.embed("The quick brown fox") == vector)
        // Case and punctuation do not matter; word order matters a little (bigrams).
        #expect(try embedder.embed("the QUICK, brown fox!") == vector)
        #expect(try embedder.embed("fox brown quick the") != vector)
    }

    @Test("related texts are nearer than unrelated ones")
    func similarity() throws {
        let query = try embedder.embed("how do I reset my password")
        let related = try embedder.embed("resetting a forgotten password")
        let unrelated = try embedder.embed("quarterly revenue grew in Europe")
        #expect(distance(query, related) < distance(query, unrelated))
    }

    @Test("a text with nothing to embed is an error")
    func empty() {
        #expect(throws: EmbeddingError.emptyText) { try embedder.embed("  ...  !? ") }
        #expect(throws: EmbeddingError.emptyText) { try embedder.embed("") }
    }

    @Test("non-Latin scripts and digits are words too")
    func unicode() throws {
        #expect(HashedEmbedder.words("Grüße, 東京 2024!") == ["grüße", "東京", "2024"])
        #expect(try embedder.embed("東京") != embedder.embed("大阪"))
    }
}

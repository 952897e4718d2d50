/// The built-in offline embedder: deterministic hashed features of a text (words, word bigrams,
/// character trigrams), signed into `dimension` buckets and L2-normalized. No model, no network:
/// texts that share words and spellings land near each other, which is what `--local` needs.
public struct HashedEmbedder: Sendable, Equatable {
    public static let name = "hashed-ngrams-v1"
    public let dimension: Int

    public init(dimension: Int = 384) {
        self.dimension = dimension
    }

    /// The embedding of `text`; an error when it has no letters or digits to embed.
    public func embed(_ text: String) throws(EmbeddingError) -> [Float] {
        let words = Self.words(text)
        guard !words.isEmpty else { throw .emptyText }
        var vector = [Float](repeating: 0, count: dimension)
        func add(_ feature: String, kind: UInt8, weight: Float) {
            let hash = Self.fnv1a(feature, seed: kind)
            let bucket = Int(hash % UInt64(dimension))
            vector[bucket] += (hash >> 63) == 0 ? weight : -weight
        }
        for (index, word) in words.enumerated() {
            add(word, kind: 1, weight: 1)
            if index > 0 { add(words[index - 1] + " " + word, kind: 2, weight: 0.5) }
            let padded = Array(" \(word) ".unicodeScalars)
            if padded.count >= 3 {
                for start in 0...(padded.count - 3) {
                    var trigram = String.UnicodeScalarView()
                    trigram.append(contentsOf: padded[start..<start + 3])
                    add(String(trigram), kind: 3, weight: 0.3)
                }
            }
        }
        var norm: Float = 0
        for value in vector { norm += value * value }
        norm = norm.squareRoot()
        // Opposite-signed features can cancel out entirely; fall back to a fixed direction.
        guard norm > 0 else {
            vector[0] = 1
            return vector
        }
        return vector.map { $0 / norm }
    }

    /// Lowercased runs of letters and digits.
    static func words(_ text: String) -> [String] {
        var words: [String] = []
        var current = String.UnicodeScalarView()
        for scalar in text.lowercased().unicodeScalars {
            if scalar.properties.isAlphabetic || scalar.properties.numericType != nil {
                current.append(scalar)
            } else if !current.isEmpty {
                words.append(String(current))
                current = String.UnicodeScalarView()
            }
        }
        if !current.isEmpty { words.append(String(current)) }
        return words
    }

    /// FNV-1a, 64 bits: stable across runs and platforms (Swift's Hasher is seeded per process).
    static func fnv1a(_ text: String, seed: UInt8) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        hash = (hash ^ UInt64(seed)) &* 0x0000_0100_0000_01B3
        for byte in text.utf8 { hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01B3 }
        return hash
    }
}

/// An embedding that could not be made.
public struct EmbeddingError: Error, CustomStringConvertible, Sendable, Equatable {
    private enum Code: Sendable, Equatable {
        case emptyText
        case upstream(String)
    }

    private let code: Code

    public static let emptyText = Self(code: .emptyText)
    public static func upstream(_ reason: String) -> Self { Self(code: .upstream(reason)) }

    public var description: String {
        switch code {
        case .emptyText: return "the text has no letters or digits to embed"
        case .upstream(let reason): return "the embeddings service failed: \(reason)"
        }
    }
}

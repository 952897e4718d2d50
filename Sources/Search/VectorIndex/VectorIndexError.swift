/// A refused index operation, naming what is wrong.
public struct VectorIndexError: Error, CustomStringConvertible, Sendable, Equatable {
    private enum Code: Sendable, Equatable {
        case wrongDimension(expected: Int, got: Int)
        case notFinite(index: Int)
        case badK(Int)
        case duplicateKeyInBatch(String)
        case badDimension(Int)
        case tooLarge
        case outOfMemory(String)
    }

    private let code: Code

    public static func wrongDimension(expected: Int, got: Int) -> Self { Self(code: .wrongDimension(expected: expected, got: got)) }
    public static func notFinite(index: Int) -> Self { Self(code: .notFinite(index: index)) }
    public static func badK(_ k: Int) -> Self { Self(code: .badK(k)) }
    public static func duplicateKeyInBatch(_ key: String) -> Self { Self(code: .duplicateKeyInBatch(key)) }
    public static func badDimension(_ dimension: Int) -> Self { Self(code: .badDimension(dimension)) }
    public static var tooLarge: Self { Self(code: .tooLarge) }
    /// A memory or address-space limit was reached; nothing was changed.
    public static func outOfMemory(_ what: String) -> Self { Self(code: .outOfMemory(what)) }

    /// True for `outOfMemory`: a limit of the machine, not a fault of the request.
    public var isResourceLimit: Bool {
        if case .outOfMemory = code { return true }
        return false
    }

    public var description: String {
        switch code {
        case .wrongDimension(let expected, let got):
            return "the vector has \(got) components; this index holds \(expected)-dimensional vectors"
        case .notFinite(let index):
            return "component \(index) of the vector is NaN or infinite; every component must be a finite number"
        case .badK(let k):
            return "k must be at least 1, got \(k)"
        case .duplicateKeyInBatch(let key):
            return "the key '\(key)' appears twice in one batch; send each key once"
        case .tooLarge:
            return "the vector's squared length exceeds 1e36, which float32 distances cannot hold; scale the vector down"
        case .outOfMemory(let what):
            return "\(what); free memory (fewer or smaller namespaces) or raise the limit"
        case .badDimension(let dimension):
            return "the dimension must be from 1 to 65536, got \(dimension)"
        }
    }
}

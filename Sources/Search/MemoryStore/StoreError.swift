/// A failed store operation: says what failed and, where it can, what to do.
public struct StoreError: Error, CustomStringConvertible, Sendable, Equatable {
    private enum Code: Sendable, Equatable {
        case corrupt(String)
        case io(String)
        case mismatch(String)
        case invalid(String)
        case failed(String)
        case limit(String)
    }

    private let code: Code

    static func corrupt(_ what: String) -> Self { Self(code: .corrupt(what)) }
    static func io(_ what: String) -> Self { Self(code: .io(what)) }
    public static func mismatch(_ what: String) -> Self { Self(code: .mismatch(what)) }
    public static func invalid(_ what: String) -> Self { Self(code: .invalid(what)) }
    /// The namespace stopped taking writes after a failure it could not undo.
    static func failed(_ what: String) -> Self { Self(code: .failed(what)) }
    /// A resource limit (memory, address space, open namespaces) was reached; nothing changed.
    public static func limit(_ what: String) -> Self { Self(code: .limit(what)) }

    /// The namespace must stop taking writes (`failed`).
    var stopsWrites: Bool {
        if case .failed = code { return true }
        return false
    }

    /// The request itself was at fault (bad input, another dimension or embedder).
    public var isInvalid: Bool {
        switch code {
        case .invalid, .mismatch: return true
        default: return false
        }
    }

    public var description: String {
        switch code {
        case .corrupt(let what): return "the store's files are damaged: \(what)"
        case .io(let what): return "a file operation failed: \(what)"
        case .mismatch(let what): return what
        case .invalid(let what): return what
        case .failed(let what): return "the namespace takes no more writes: \(what)"
        case .limit(let what): return what
        }
    }
}


/// The command-line words neither the runtime nor the handler knows. A mistyped flag
/// (`--lcoal`, `--prot 9000`) would otherwise start a worker that silently ignores it.
package enum UnknownArguments {
    /// Throws for the first word of `unrecognized` that is not a handler flag or one of its
    /// values. A handler flag is named as declared (`--model-dir`), matched with or without
    /// `=value`; the bare words after it are its values.
    package static func check(_ unrecognized: [String], handlerFlags: [String]) throws(WorkerRuntimeError) {
        var afterHandlerFlag = false
        for word in unrecognized {
            if word.hasPrefix("-"), word.count > 1 {
                let name = String(word.prefix { $0 != "=" })
                guard handlerFlags.contains(name) else { throw unknownFlag(name, handlerFlags: handlerFlags) }
                afterHandlerFlag = !word.contains("=")
            } else if !afterHandlerFlag {
                throw .arguments(
                    "unexpected argument '\(word)': the worker takes flags only\(knownList(handlerFlags))", exitCode: usageExit)
            }
        }
    }

    /// ArgumentParser's exit status for a usage error (EX_USAGE).
    static let usageExit: Int32 = 64

    private static func unknownFlag(_ name: String, handlerFlags: [String]) -> WorkerRuntimeError {
        let candidates = WorkerArguments.knownFlags + WorkerArguments.runpodFlags + handlerFlags
        let nearest = candidates.map { ($0, distance($0, name)) }.min { $0.1 < $1.1 }
        let suggestion = nearest.flatMap { $0.1 <= 2 ? " (did you mean \($0.0)?)" : nil } ?? ""
        return .arguments("unknown flag \(name)\(suggestion)\(knownList(handlerFlags))", exitCode: usageExit)
    }

    private static func knownList(_ handlerFlags: [String]) -> String {
        var text = ". Known flags: \(WorkerArguments.knownFlags.joined(separator: ", ")); runpod-python's spellings: "
            + WorkerArguments.runpodFlags.joined(separator: ", ")
        if !handlerFlags.isEmpty { text += "; this handler's own: \(handlerFlags.joined(separator: ", "))" }
        return text
    }

    /// Levenshtein distance, for the suggestion (a handful of short words).
    static func distance(_ a: String, _ b: String) -> Int {
        let a = Array(a.utf8), b = Array(b.utf8)
        guard !a.isEmpty, !b.isEmpty else { return max(a.count, b.count) }
        var previous = Array(0...b.count)
        var current = previous
        for i in 1...a.count {
            current[0] = i
            for j in 1...b.count {
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            swap(&previous, &current)
        }
        return previous[b.count]
    }
}

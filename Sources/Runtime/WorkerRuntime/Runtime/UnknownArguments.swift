/// The command-line words the core's parser left: the features' flags (taken here, with their
/// values), the handler's own, and anything else, which is an error. A mistyped flag (`--lcoal`,
/// `--prot 9000`) would otherwise start a worker that silently ignores it.
enum UnknownArguments {
    /// The features' flags among `unrecognized`; throws for the first word that is neither one of
    /// them nor a handler flag or one of its values. A flag is matched with or without `=value`;
    /// a feature flag that takes a value takes the next word when there is no `=`; the bare words
    /// after a handler flag are its values.
    package static func take(
        _ unrecognized: [String], featureFlags: [FeatureFlag], handlerFlags: [String]
    ) throws(WorkerRuntimeError) -> FeatureFlagValues {
        var values = FeatureFlagValues()
        var afterHandlerFlag = false
        var index = unrecognized.startIndex
        while index < unrecognized.endIndex {
            let word = unrecognized[index]
            index += 1
            guard word.hasPrefix("-"), word.count > 1 else {
                guard afterHandlerFlag else {
                    throw .arguments(
                        "unexpected argument '\(word)': the worker takes flags only\(knownList(featureFlags, handlerFlags))",
                        exitCode: usageExit)
                }
                continue
            }
            var name = String(word.prefix { $0 != "=" })
            if name == "--" || name == "-" { name = word }
            let inline = word.firstIndex(of: "=").map { String(word[word.index(after: $0)...]) }
            afterHandlerFlag = false
            if let flag = featureFlags.first(where: { $0.names.contains(name) }) {
                if flag.takesValue {
                    if let inline {
                        values.values[flag.name] = .some(inline)
                    } else if index < unrecognized.endIndex, !isDeclared(unrecognized[index], featureFlags, handlerFlags) {
                        values.values[flag.name] = .some(unrecognized[index])
                        index += 1
                    } else {
                        throw .arguments("missing value for '\(name)'\(knownList(featureFlags, handlerFlags))", exitCode: usageExit)
                    }
                } else {
                    guard inline == nil else {
                        throw .arguments("'\(name)' takes no value\(knownList(featureFlags, handlerFlags))", exitCode: usageExit)
                    }
                    values.values[flag.name] = .some(nil)
                }
            } else if handlerFlags.contains(name) {
                afterHandlerFlag = inline == nil
            } else {
                throw unknownFlag(name, featureFlags: featureFlags, handlerFlags: handlerFlags)
            }
        }
        return values
    }

    /// Whether `word` is a flag someone declared (then it is not the value of the flag before it).
    private static func isDeclared(_ word: String, _ featureFlags: [FeatureFlag], _ handlerFlags: [String]) -> Bool {
        guard word.hasPrefix("--") else { return false }
        let name = String(word.prefix { $0 != "=" })
        return featureFlags.contains { $0.names.contains(name) } || handlerFlags.contains(name)
            || WorkerArguments.knownFlags.contains(name) || WorkerArguments.runpodFlags.contains(name)
    }

    /// The features' flags for `--help`, after the core's.
    package static func help(_ featureFlags: [FeatureFlag]) -> String {
        guard !featureFlags.isEmpty else { return "" }
        var text = "\nFEATURE OPTIONS:\n"
        for flag in featureFlags {
            let spelling = flag.names.joined(separator: ", ") + (flag.takesValue ? " <value>" : "")
            text += "  \(spelling)\n        \(flag.help)\n"
        }
        return text
    }

    /// ArgumentParser's exit status for a usage error (EX_USAGE).
    static let usageExit: Int32 = 64

    /// Flags of this package's features, for the worker built without them: what to add.
    private static let featureHints: [String: String] = {
        let server = "the endpoint server's: add the WorkerEndpointServer module and features: [.endpointServer()] to WorkerRuntime"
        var hints = ["--mcp": "MCP's: add the WorkerMCP module and features: [.endpointServer(), .mcp()] to WorkerRuntime"]
        for flag in ["--local", "--rp_serve_api", "--host", "--rp_api_host", "--port", "--rp_api_port", "--allow-unauthenticated"] {
            hints[flag] = server
        }
        return hints
    }()

    private static func unknownFlag(_ name: String, featureFlags: [FeatureFlag], handlerFlags: [String]) -> WorkerRuntimeError {
        if let hint = featureHints[name] {
            return .arguments("\(name) is a flag of a feature this worker was built without (\(hint))", exitCode: usageExit)
        }
        let candidates = WorkerArguments.knownFlags + WorkerArguments.runpodFlags + featureFlags.flatMap(\.names) + handlerFlags
        let nearest = candidates.map { ($0, distance($0, name.lowercased())) }.min { $0.1 < $1.1 }
        let suggestion = nearest.flatMap { $0.1 <= 2 ? " (did you mean \($0.0)?)" : nil } ?? ""
        return .arguments("unknown flag \(name)\(suggestion)\(knownList(featureFlags, handlerFlags))", exitCode: usageExit)
    }

    private static func knownList(_ featureFlags: [FeatureFlag], _ handlerFlags: [String]) -> String {
        let known = WorkerArguments.knownFlags + featureFlags.map(\.name)
        let runpod = WorkerArguments.runpodFlags + featureFlags.flatMap { $0.names.dropFirst().filter { $0.hasPrefix("--rp_") } }
        var text = ". Known flags: \(known.joined(separator: ", ")); runpod-python's spellings: " + runpod.joined(separator: ", ")
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

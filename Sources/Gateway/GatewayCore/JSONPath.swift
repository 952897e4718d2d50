import WorkerJSON

/// A path into a job (`input.messages[0].role`, or `$.input.task`): object keys and array
/// indices, read from the job's root (`{"input": …, "policy": …}`).
package struct JSONPath: Sendable, Equatable, CustomStringConvertible {
    package enum Step: Sendable, Equatable {
        case key(String)
        case index(Int)
    }

    package let steps: [Step]
    package let description: String

    /// nil when `text` is not a path (empty keys, a bracket that is not an index).
    package init?(_ text: String) {
        var rest = Substring(text)
        if rest.hasPrefix("$.") { rest = rest.dropFirst(2) }
        var steps: [Step] = []
        for part in rest.split(separator: ".", omittingEmptySubsequences: false) {
            var segment = part
            // `key[1][2]`: the key, then its indices.
            let key = segment.prefix { $0 != "[" }
            guard !key.isEmpty else { return nil }
            steps.append(.key(String(key)))
            segment = segment.dropFirst(key.count)
            while !segment.isEmpty {
                guard segment.first == "[", let close = segment.firstIndex(of: "]"),
                    let index = Int(segment[segment.index(after: segment.startIndex)..<close]), index >= 0
                else { return nil }
                steps.append(.index(index))
                segment = segment[segment.index(after: close)...]
            }
        }
        guard !steps.isEmpty else { return nil }
        self.steps = steps
        self.description = text
    }

    /// The value at this path in `value`, if there is one.
    package func value(in value: JSONValue) -> JSONValue? {
        var current = value
        for step in steps {
            switch step {
            case .key(let key):
                guard let next = current.objectValue?[key] else { return nil }
                current = next
            case .index(let index):
                guard let array = current.arrayValue, index < array.count else { return nil }
                current = array[index]
            }
        }
        return current
    }
}

import WorkerJSON
import WorkerRuntime

/// A validated memory job. Parsing checks everything up front, so a bad field is reported before
/// anything is written.
enum MemoryRequest: Equatable {
    struct Item: Equatable {
        var key: String
        var content: String
        var metadata: JSONValue
        var vector: [Float]?
    }

    case store(namespace: String, items: [Item])
    case retrieve(namespace: String, query: String?, vector: [Float]?, k: Int, filter: [String: String]?)
    case get(namespace: String, key: String)
    case delete(namespace: String, key: String)
    case stats(namespace: String)
    case embed(texts: [String])

    static let actions = ["store", "store_batch", "retrieve", "get", "delete", "stats", "embed"]
    static let maxEmbedTexts = 1024
    static let maxContentBytes = 1 << 20
    static let maxKeyBytes = 512
    static let maxBatch = 10_000
    static let maxK = 1000
    static let maxNamespaceBytes = 128
    static let maxSquaredLength = 1e36

    static func parse(_ input: JSONValue) throws(MemoryInputError) -> MemoryRequest {
        guard case .object(let fields) = input else { throw MemoryInputError("input must be an object with an \"action\", got \(input.typeName)") }
        guard let action = fields["action"]?.stringValue else {
            throw MemoryInputError("input.action is missing; use one of \(actions.joined(separator: ", "))")
        }
        if action == "embed" {
            guard let values = fields["texts"]?.arrayValue, !values.isEmpty, values.count <= maxEmbedTexts else {
                throw MemoryInputError("input.texts must be a list of 1 to \(maxEmbedTexts) strings")
            }
            var texts: [String] = []
            for (index, value) in values.enumerated() {
                guard let text = value.stringValue else { throw MemoryInputError("input.texts[\(index)] must be a string, got \(value.typeName)") }
                guard text.utf8.count <= maxContentBytes else { throw MemoryInputError("input.texts[\(index)] is over \(maxContentBytes) bytes") }
                texts.append(text)
            }
            return .embed(texts: texts)
        }
        let namespace = try Self.namespace(fields["namespace"])
        switch action {
        case "store":
            return .store(namespace: namespace, items: [try item(fields, at: "input")])
        case "store_batch":
            guard let items = fields["items"]?.arrayValue else { throw MemoryInputError("input.items must be a list of items") }
            guard !items.isEmpty, items.count <= maxBatch else {
                throw MemoryInputError("input.items must hold 1 to \(maxBatch) items, got \(items.count)")
            }
            var seen = Set<String>()
            var parsed: [Item] = []
            for (index, value) in items.enumerated() {
                guard case .object(let itemFields) = value else { throw MemoryInputError("input.items[\(index)] must be an object") }
                let item = try item(itemFields, at: "input.items[\(index)]")
                guard seen.insert(item.key).inserted else { throw MemoryInputError("input.items[\(index)].key '\(item.key)' appears twice") }
                parsed.append(item)
            }
            return .store(namespace: namespace, items: parsed)
        case "retrieve":
            let query = try optionalString(fields["query"], "input.query")
            let vector = try fields["vector"].map { value throws(MemoryInputError) in try Self.vector(value, "input.vector") }
            guard (query != nil) != (vector != nil) else { throw MemoryInputError("retrieve needs exactly one of input.query or input.vector") }
            if let query, query.utf8.count > maxContentBytes { throw MemoryInputError("input.query is over \(maxContentBytes) bytes") }
            var k = 5
            if let value = fields["k"] {
                guard let parsed = value.intValue, (1...maxK).contains(parsed) else {
                    throw MemoryInputError("input.k must be a whole number from 1 to \(maxK), got \(Self.shown(value))")
                }
                k = parsed
            }
            return .retrieve(namespace: namespace, query: query, vector: vector, k: k, filter: try filter(fields["filter"]))
        case "get", "delete":
            let key = try Self.key(fields["key"], "input.key")
            return action == "get" ? .get(namespace: namespace, key: key) : .delete(namespace: namespace, key: key)
        case "stats":
            return .stats(namespace: namespace)
        default:
            throw MemoryInputError("input.action '\(action)' is unknown; use one of \(actions.joined(separator: ", "))")
        }
    }

    private static func item(_ fields: [String: JSONValue], at path: String) throws(MemoryInputError) -> Item {
        let key = try Self.key(fields["key"], "\(path).key")
        guard let content = fields["content"]?.stringValue else {
            throw MemoryInputError("\(path).content must be a string, got \(fields["content"].map(shown) ?? "nothing")")
        }
        guard content.utf8.count <= maxContentBytes else {
            throw MemoryInputError("\(path).content is \(content.utf8.count) bytes; the limit is \(maxContentBytes)")
        }
        let metadata = fields["metadata"] ?? [:]
        guard case .object = metadata else { throw MemoryInputError("\(path).metadata must be an object, got \(metadata.typeName)") }
        let vector = try fields["vector"].map { value throws(MemoryInputError) in try Self.vector(value, "\(path).vector") }
        return Item(key: key, content: content, metadata: metadata, vector: vector)
    }

    private static func key(_ value: JSONValue?, _ path: String) throws(MemoryInputError) -> String {
        guard let raw = value?.stringValue, !raw.isEmpty else { throw MemoryInputError("\(path) must be a non-empty string") }
        let key = normalized(raw)
        guard key.utf8.count <= maxKeyBytes else { throw MemoryInputError("\(path) is over \(maxKeyBytes) bytes") }
        return key
    }

    private static func optionalString(_ value: JSONValue?, _ path: String) throws(MemoryInputError) -> String? {
        guard let value, value != .null else { return nil }
        guard let text = value.stringValue else { throw MemoryInputError("\(path) must be a string, got \(value.typeName)") }
        return text
    }

    static func vector(_ value: JSONValue, _ path: String) throws(MemoryInputError) -> [Float] {
        guard let values = value.arrayValue, !values.isEmpty else { throw MemoryInputError("\(path) must be a non-empty list of numbers") }
        var vector: [Float] = []
        vector.reserveCapacity(values.count)
        for (index, component) in values.enumerated() {
            guard let number = component.doubleValue else {
                throw MemoryInputError("\(path)[\(index)] must be a number, got \(component.typeName)")
            }
            vector.append(Float(number))
        }
        return try checked(vector, path)
    }

    /// The index's limits, checked before anything is written: every component finite as a 32-bit
    /// float, and a squared length float32 distances can hold (the index refuses anything else).
    static func checked(_ vector: [Float], _ path: String) throws(MemoryInputError) -> [Float] {
        var squaredLength = 0.0
        for (index, component) in vector.enumerated() {
            guard component.isFinite else { throw MemoryInputError("\(path)[\(index)] is not finite as a 32-bit float (\(component))") }
            squaredLength += Double(component) * Double(component)
        }
        guard squaredLength <= maxSquaredLength else {
            throw MemoryInputError(
                "\(path) has a squared length of \(squaredLength), over the \(maxSquaredLength) float32 distances can hold; scale it down")
        }
        return vector
    }

    private static func filter(_ value: JSONValue?) throws(MemoryInputError) -> [String: String]? {
        guard let value, value != .null else { return nil }
        guard case .object(let fields) = value else { throw MemoryInputError("input.filter must be an object of metadata values") }
        var filter: [String: String] = [:]
        for (name, expected) in fields {
            guard let encoded = attributeValue(expected) else {
                throw MemoryInputError("input.filter.\(name) must be a string, number, boolean or null (equality only)")
            }
            filter[name] = encoded
        }
        return filter
    }

    /// The filterable form of a metadata value: scalars in one canonical JSON text, so equal values
    /// match however they were written (`1e15`, `1000000000000000` and `1000000000000000.0` are one
    /// number; strings compare in NFC).
    static func attributeValue(_ value: JSONValue) -> String? {
        switch value {
        case .array, .object: return nil
        case .integer(let int): return String(int)
        case .number(let double) where double == double.rounded() && abs(double) < 9.2e18: return String(Int64(double))
        case .string(let text): return try? JSONValue.string(normalized(text)).jsonString()
        default: return try? value.jsonString()
        }
    }

    /// NFC, the form every key and namespace name is kept in: "café" typed either way is one key,
    /// in memory and in the directory name on disk.
    static func normalized(_ text: String) -> String {
        if text.utf8.allSatisfy({ $0 < 0x80 }) { return text }
        return String(decoding: text._nfcCodeUnits, as: UTF8.self)
    }

    /// Namespace names are directory names: letters, marks and digits of any script plus `-`, `_`
    /// and `.`, not starting with `.`; no spaces, separators, controls or format characters
    /// (U+202E would show a name reversed; U+2028 splits log lines).
    static func namespace(_ value: JSONValue?) throws(MemoryInputError) -> String {
        guard let value, value != .null else { return "default" }
        guard let raw = value.stringValue else { throw MemoryInputError("input.namespace must be a string, got \(value.typeName)") }
        let name = normalized(raw)
        let rule = "input.namespace must be 1 to \(maxNamespaceBytes) bytes of letters, digits, '-', '_' and '.', not starting with '.'"
        guard !name.isEmpty, name.utf8.count <= maxNamespaceBytes, !name.hasPrefix(".") else {
            throw MemoryInputError("\(rule); got \(shown(value))")
        }
        for scalar in name.unicodeScalars where !isNameScalar(scalar) {
            throw MemoryInputError("\(rule); U+\(String(scalar.value, radix: 16, uppercase: true)) is not allowed")
        }
        return name
    }

    private static func isNameScalar(_ scalar: Unicode.Scalar) -> Bool {
        if scalar.isASCII {
            let byte = UInt8(scalar.value)
            let lower = byte | 0x20
            return (byte >= 0x30 && byte <= 0x39) || (lower >= 0x61 && lower <= 0x7A) || byte == 0x2D || byte == 0x5F || byte == 0x2E
        }
        switch scalar.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter,
            .nonspacingMark, .spacingMark, .enclosingMark, .decimalNumber:
            return true
        default:
            return false
        }
    }

    static func shown(_ value: JSONValue) -> String {
        String(((try? value.jsonString()) ?? value.typeName).prefix(60))
    }
}

import WorkerJSON

/// Checks a value against the part of JSON Schema the orchestrator's answer schemas use (type,
/// properties, required, additionalProperties: false, items, enum, minimum/maximum,
/// minLength/maxLength, minItems/maxItems). The first problem is returned as a sentence naming
/// the path, which goes back to the LLM when it is asked again.
enum JSONSchemaCheck {
    static func problem(with value: JSONValue, against schema: JSONValue, at path: String = "$") -> String? {
        if let type = schema["type"]?.stringValue, !matches(value, type: type) {
            return "\(path) must be \(article(type)), got \(value.typeName)"
        }
        if let allowed = schema["enum"]?.arrayValue, !allowed.contains(value) {
            return "\(path) must be one of \(allowed.compactMap { try? $0.jsonString() }.joined(separator: ", ")), got \((try? value.jsonString()) ?? value.typeName)"
        }
        switch value {
        case .object(let fields):
            let properties = schema["properties"]?.objectValue ?? [:]
            for name in schema["required"]?.arrayValue?.compactMap(\.stringValue) ?? [] where fields[name] == nil {
                return "\(path).\(name) is missing"
            }
            if schema["additionalProperties"] == .bool(false), let extra = fields.keys.sorted().first(where: { properties[$0] == nil }) {
                return "\(path).\(extra) is not a field of this answer (allowed: \(properties.keys.sorted().joined(separator: ", ")))"
            }
            for name in fields.keys.sorted() {
                guard let field = fields[name], let fieldSchema = properties[name] else { continue }
                if let problem = problem(with: field, against: fieldSchema, at: "\(path).\(name)") { return problem }
            }
        case .array(let items):
            if let least = schema["minItems"]?.intValue, items.count < least { return "\(path) must have at least \(least) items, got \(items.count)" }
            if let most = schema["maxItems"]?.intValue, items.count > most { return "\(path) must have at most \(most) items, got \(items.count)" }
            if let itemSchema = schema["items"] {
                for (index, item) in items.enumerated() {
                    if let problem = problem(with: item, against: itemSchema, at: "\(path)[\(index)]") { return problem }
                }
            }
        case .string(let text):
            if let least = schema["minLength"]?.intValue, text.count < least { return "\(path) must be at least \(least) characters long" }
            if let most = schema["maxLength"]?.intValue, text.count > most { return "\(path) must be at most \(most) characters long, got \(text.count)" }
        case .integer, .number:
            let number = value.doubleValue!
            if let least = schema["minimum"]?.doubleValue, number < least { return "\(path) must be at least \(format(least)), got \(format(number))" }
            if let most = schema["maximum"]?.doubleValue, number > most { return "\(path) must be at most \(format(most)), got \(format(number))" }
        case .null, .bool:
            break
        }
        return nil
    }

    private static func matches(_ value: JSONValue, type: String) -> Bool {
        switch (type, value) {
        case ("object", .object), ("array", .array), ("string", .string), ("boolean", .bool), ("null", .null): return true
        case ("number", .integer), ("number", .number): return value.doubleValue!.isFinite
        case ("integer", _): return value.intValue != nil
        default: return false
        }
    }

    private static func article(_ type: String) -> String {
        type == "object" || type == "array" || type == "integer" ? "an \(type)" : "a \(type)"
    }

    private static func format(_ number: Double) -> String {
        number == number.rounded() && abs(number) < 1e15 ? String(Int64(number)) : String(number)
    }
}

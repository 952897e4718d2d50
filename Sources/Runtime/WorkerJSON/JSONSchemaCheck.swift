/// Checks a value against the part of JSON Schema that tool declarations use: `type`, `enum`,
/// `const`, `properties`, `required`, `additionalProperties`, `items`, `minItems`/`maxItems`,
/// `minLength`/`maxLength`, `minimum`/`maximum` (and the exclusive forms), `anyOf` and `oneOf`.
/// Other keywords (`pattern`, `format`, `$ref`, …) are not checked: the handler still validates
/// its own input, so a gap here costs a later, equally clear error, never a wrong result.
package enum JSONSchemaCheck {
    /// The first violation, naming where it is (`arguments.items[2].key: expected a string, got
    /// a number`), or nil when the value conforms.
    package static func violation(of value: JSONValue, against schema: JSONValue, at path: String) -> String? {
        guard case .object(let rules) = schema else { return nil }
        if let types = rules["type"], !matches(value, types) {
            return "\(path): expected \(describe(types)), got \(value.typeName)"
        }
        if let allowed = rules["enum"]?.arrayValue, !allowed.contains(where: { equal($0, value) }) {
            let shown = allowed.prefix(20).map { (try? $0.jsonString()) ?? $0.typeName }.joined(separator: ", ")
            return "\(path): must be one of \(shown)"
        }
        if let constant = rules["const"], !equal(constant, value) {
            return "\(path): must be \((try? constant.jsonString()) ?? constant.typeName)"
        }
        switch value {
        case .object(let fields):
            if let failure = objectViolation(fields, rules, path) { return failure }
        case .array(let elements):
            if let minimum = rules["minItems"]?.intValue, elements.count < minimum {
                return "\(path): needs at least \(minimum) item(s), got \(elements.count)"
            }
            if let maximum = rules["maxItems"]?.intValue, elements.count > maximum {
                return "\(path): takes at most \(maximum) item(s), got \(elements.count)"
            }
            if let items = rules["items"] {
                for (index, element) in elements.enumerated() {
                    if let failure = violation(of: element, against: items, at: "\(path)[\(index)]") { return failure }
                }
            }
        case .string(let text):
            let length = text.unicodeScalars.count
            if let minimum = rules["minLength"]?.intValue, length < minimum {
                return "\(path): must be at least \(minimum) character(s) long"
            }
            if let maximum = rules["maxLength"]?.intValue, length > maximum {
                return "\(path): must be at most \(maximum) character(s) long, got \(length)"
            }
        case .integer, .number:
            if let failure = numberViolation(value.doubleValue ?? 0, rules, path) { return failure }
        default:
            break
        }
        if let options = rules["anyOf"]?.arrayValue,
            !options.contains(where: { violation(of: value, against: $0, at: path) == nil })
        {
            return "\(path): matches none of the allowed forms"
        }
        if let options = rules["oneOf"]?.arrayValue {
            let matching = options.filter { violation(of: value, against: $0, at: path) == nil }.count
            if matching != 1 { return "\(path): must match exactly one of the allowed forms (matches \(matching))" }
        }
        return nil
    }

    private static func objectViolation(_ fields: [String: JSONValue], _ rules: [String: JSONValue], _ path: String) -> String? {
        let properties = rules["properties"]?.objectValue ?? [:]
        for name in rules["required"]?.arrayValue?.compactMap(\.stringValue) ?? [] where fields[name] == nil {
            return "\(path).\(name): is required"
        }
        // Sorted, so the error named is the same on every run.
        for name in fields.keys.sorted() {
            let field = fields[name]!
            if let schema = properties[name] {
                if let failure = violation(of: field, against: schema, at: "\(path).\(name)") { return failure }
                continue
            }
            switch rules["additionalProperties"] {
            case .bool(false)?:
                let known = properties.keys.sorted().joined(separator: ", ")
                return "\(path).\(name): is not a known argument" + (known.isEmpty ? "" : " (known: \(known))")
            case .object(let schema)?:
                if let failure = violation(of: field, against: .object(schema), at: "\(path).\(name)") { return failure }
            default:
                continue
            }
        }
        return nil
    }

    private static func numberViolation(_ number: Double, _ rules: [String: JSONValue], _ path: String) -> String? {
        if let minimum = rules["minimum"]?.doubleValue, number < minimum { return "\(path): must be at least \(shown(minimum))" }
        if let maximum = rules["maximum"]?.doubleValue, number > maximum { return "\(path): must be at most \(shown(maximum))" }
        if let bound = rules["exclusiveMinimum"]?.doubleValue, number <= bound { return "\(path): must be more than \(shown(bound))" }
        if let bound = rules["exclusiveMaximum"]?.doubleValue, number >= bound { return "\(path): must be less than \(shown(bound))" }
        return nil
    }

    private static func matches(_ value: JSONValue, _ types: JSONValue) -> Bool {
        if let names = types.arrayValue { return names.contains { matches(value, $0) } }
        switch (types.stringValue, value) {
        case ("object", .object), ("array", .array), ("string", .string), ("boolean", .bool), ("null", .null): return true
        case ("number", .integer), ("number", .number), ("integer", .integer): return true
        case ("integer", .number(let double)): return double.rounded() == double && double.isFinite
        default: return false
        }
    }

    private static func describe(_ types: JSONValue) -> String {
        let names = types.arrayValue?.compactMap(\.stringValue) ?? [types.stringValue ?? "?"]
        let worded = names.map { name in
            switch name {
            case "object": return "an object"
            case "array": return "a list"
            case "integer": return "a whole number"
            case "boolean": return "true or false"
            default: return "a \(name)"
            }
        }
        return worded.joined(separator: " or ")
    }

    /// Numbers compare by value (`1` equals `1.0`), as JSON Schema says.
    private static func equal(_ lhs: JSONValue, _ rhs: JSONValue) -> Bool {
        if let left = lhs.doubleValue, let right = rhs.doubleValue, lhs.typeName == "number", rhs.typeName == "number" {
            return left == right
        }
        return lhs == rhs
    }

    private static func shown(_ number: Double) -> String {
        number.rounded() == number && abs(number) < 1e15 ? String(Int64(number)) : String(number)
    }
}

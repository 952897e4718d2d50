extension JSONValue {
    public subscript(key: String) -> JSONValue? {
        if case .object(let object) = self { return object.value(forKey: key) }
        return nil
    }

    public subscript(index: Int) -> JSONValue? {
        if case .array(let array) = self, array.indices.contains(index) { return array[index] }
        return nil
    }

    public var objectValue: [String: JSONValue]? {
        if case .object(let object) = self { return object }
        return nil
    }

    public var arrayValue: [JSONValue]? {
        if case .array(let array) = self { return array }
        return nil
    }

    public var stringValue: String? {
        if case .string(let string) = self { return string }
        return nil
    }

    public var boolValue: Bool? {
        if case .bool(let bool) = self { return bool }
        return nil
    }

    /// Integers and doubles alike, as a double.
    public var doubleValue: Double? {
        switch self {
        case .integer(let int): return Double(int)
        case .number(let double): return double
        default: return nil
        }
    }

    /// An integer, or a double with no fractional part.
    public var intValue: Int? {
        switch self {
        case .integer(let int): return Int(exactly: int)
        case .number(let double): return Int(exactly: double)
        default: return nil
        }
    }

    /// Python's truthiness, which the platform protocol relies on (`error`, `refresh_worker`).
    public var isTruthy: Bool {
        switch self {
        case .null: return false
        case .bool(let bool): return bool
        case .integer(let int): return int != 0
        case .number(let double): return double != 0
        case .string(let string): return !string.isEmpty
        case .array(let array): return !array.isEmpty
        case .object(let object): return !object.isEmpty
        }
    }

    /// A short name of the JSON type, for error messages.
    public var typeName: String {
        switch self {
        case .null: return "null"
        case .bool: return "boolean"
        case .integer, .number: return "number"
        case .string: return "string"
        case .array: return "array"
        case .object: return "object"
        }
    }
}

extension [String: JSONValue] {
    /// `self[key]`, found by comparing keys when there are few: job bodies, inputs and results
    /// mostly have one to four, and comparing short keys costs less than hashing one (SipHash)
    /// for the table. Same answer as the subscript: keys compare as `==`, the table's equality.
    package func value(forKey key: String) -> JSONValue? {
        guard count <= 4 else { return self[key] }
        for (candidate, value) in self where candidate == key { return value }
        return nil
    }
}

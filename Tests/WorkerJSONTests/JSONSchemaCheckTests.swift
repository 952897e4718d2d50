import Testing
import TestSupport

@testable import WorkerJSON

@Suite("JSON Schema checks of tool arguments", .defaultPass)
struct JSONSchemaCheckTests {
    func violation(_ value: JSONValue, _ schema: JSONValue) -> String? {
        JSONSchemaCheck.violation(of: value, against: schema, at: "arguments")
    }

    @Test("types, including integer (1.0 is one), number and unions")
    func types() {
        #expect(violation(1, ["type": "integer"]) == nil)
        #expect(violation(1.0, ["type": "integer"]) == nil)
        #expect(violation(1.5, ["type": "integer"]) == "arguments: expected a whole number, got number")
        #expect(violation(1, ["type": "number"]) == nil)
        #expect(violation(nil, ["type": ["string", "null"]]) == nil)
        #expect(violation(true, ["type": ["string", "null"]]) == "arguments: expected a string or a null, got boolean")
        #expect(violation([1], ["type": "object"]) == "arguments: expected an object, got array")
    }

    @Test("objects: required, closed and typed extra properties; the path names the field")
    func objects() {
        let schema: JSONValue = [
            "type": "object", "required": ["a"], "additionalProperties": false,
            "properties": ["a": ["type": "string"], "b": ["type": "object", "additionalProperties": ["type": "integer"]]],
        ]
        #expect(violation(["a": "x"], schema) == nil)
        #expect(violation([:], schema) == "arguments.a: is required")
        #expect(violation(["a": "x", "c": 1], schema) == "arguments.c: is not a known argument (known: a, b)")
        #expect(violation(["a": "x", "b": ["n": "one"]], schema) == "arguments.b.n: expected a whole number, got string")
    }

    @Test("arrays, strings, numbers, enum, const, anyOf and oneOf")
    func bounds() {
        let list: JSONValue = ["type": "array", "minItems": 1, "maxItems": 2, "items": ["type": "string", "minLength": 1, "maxLength": 3]]
        #expect(violation(["ab"], list) == nil)
        #expect(violation([], list) == "arguments: needs at least 1 item(s), got 0")
        #expect(violation(["a", "b", "c"], list) == "arguments: takes at most 2 item(s), got 3")
        #expect(violation(["a", ""], list) == "arguments[1]: must be at least 1 character(s) long")
        #expect(violation(["abcd"], list) == "arguments[0]: must be at most 3 character(s) long, got 4")
        #expect(violation(["é漢字"], list) == nil, "lengths count characters, not bytes")
        #expect(violation(0, ["minimum": 1]) == "arguments: must be at least 1")
        #expect(violation(10, ["exclusiveMaximum": 10]) == "arguments: must be less than 10")
        #expect(violation("c", ["enum": ["a", "b"]]) == "arguments: must be one of \"a\", \"b\"")
        #expect(violation(1.0, ["enum": [1]]) == nil)
        #expect(violation("x", ["const": "y"]) == "arguments: must be \"y\"")
        #expect(violation("x", ["anyOf": [["type": "integer"], ["type": "string"]]]) == nil)
        #expect(violation(true, ["anyOf": [["type": "integer"], ["type": "string"]]]) == "arguments: matches none of the allowed forms")
        #expect(violation(1, ["oneOf": [["type": "integer"], ["type": "number"]]]) != nil)
    }

    @Test("keywords it does not check (pattern, format, $ref) never fail a value")
    func unknownKeywords() {
        #expect(violation("x", ["type": "string", "pattern": "^[0-9]+$", "format": "email"]) == nil)
        #expect(violation(1, ["$ref": "#/$defs/x"]) == nil)
        #expect(violation(1, true) == nil)
    }
}

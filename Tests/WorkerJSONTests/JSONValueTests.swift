import Testing
import TestSupport

import WorkerJSON

@Suite("JSONValue", .defaultPass)
struct JSONValueTests {
    @Test("a key is found in objects of every size as the table would find it, canonically equal spellings included")
    func keyLookup() {
        for size in 0...7 {
            var object: [String: JSONValue] = [:]
            for index in 0..<size { object["key\(index)"] = .integer(Int64(index)) }
            object["caf\u{E9}"] = "precomposed"
            let value = JSONValue.object(object)
            for index in 0..<size { #expect(value["key\(index)"] == .integer(Int64(index)), "size \(size)") }
            #expect(value["key\(size)"] == nil, "size \(size)")
            #expect(value[""] == nil)
            // "e" + U+0301 equals "é" as a String, in the table and in the comparisons alike.
            #expect(value["cafe\u{301}"] == "precomposed", "size \(size)")
            #expect(object.value(forKey: "cafe\u{301}") == object["cafe\u{301}"])
        }
        #expect(JSONValue.array([1])["key"] == nil)
    }

    @Test("parses and serializes every kind of value, keys sorted")
    func roundTrip() throws {
        let text = #"{"b":[1,2.5,"x\"y\n",null,true],"a":{"big":9007199254740993,"neg":-3,"u":"é☃"}}"#
        let value = try JSONValue.parse(text)
        #expect(value["a"]?["big"] == .integer(9_007_199_254_740_993))
        #expect(try value.jsonString() == #"{"a":{"big":9007199254740993,"neg":-3,"u":"é☃"},"b":[1,2.5,"x\"y\n",null,true]}"#)
        #expect(try JSONValue.parse(try value.serialized()) == value)
    }

    @Test("malformed text is an error that says so")
    func malformed() {
        #expect(throws: JSONError.self) { try JSONValue.parse("{\"a\":") }
        #expect(throws: JSONError.self) { try JSONValue.parse("not json") }
    }

    @Test("NaN and infinity cannot be serialized")
    func nonFinite() {
        #expect(throws: JSONError.self) { try JSONValue.number(.infinity).serialized() }
        #expect(throws: JSONError.self) { try JSONValue.array([.number(.nan)]).serialized() }
    }

    @Test("truthiness follows Python's, which the protocol relies on")
    func truthiness() {
        #expect(!JSONValue.null.isTruthy)
        #expect(!JSONValue.string("").isTruthy)
        #expect(!JSONValue.integer(0).isTruthy)
        #expect(!JSONValue.object([:]).isTruthy)
        #expect(JSONValue.string("e").isTruthy)
        #expect(JSONValue.array([nil]).isTruthy)
    }

    @Test("typed values convert both ways")
    func typed() throws {
        struct Point: Codable, Equatable { var x: Int; var y: Double }
        let value = try JSONValue(encoding: Point(x: 1, y: 2.5))
        #expect(value == ["x": 1, "y": 2.5])
        #expect(try value.decode(as: Point.self) == Point(x: 1, y: 2.5))
        do {
            let wrong: JSONValue = ["x": "one", "y": 1]
            _ = try wrong.decode(as: Point.self)
            Issue.record("decoded a string as Int")
        } catch {
            #expect(error.description.contains("x"))
        }
    }
}

@Suite("JSONValue numbers", .defaultPass)
struct JSONValueNumberTests {
    @Test("integers and doubles of the same value are equal and hash alike")
    func numericEquality() {
        #expect(JSONValue.integer(1) == .number(1.0))
        #expect(JSONValue.number(2.5) != .integer(2))
        #expect(Set<JSONValue>([.integer(3), .number(3.0)]).count == 1)
        #expect(JSONValue.array([1, 2.0]) == [1.0, 2])
    }
}

import Testing
import TestSupport
import WorkerJSON

@Suite("The canonical form (cache keys, hashing)", .defaultPass)
struct CanonicalFormTests {
    @Test("key order does not matter: objects serialize with keys sorted by their bytes, at every depth")
    func keyOrder() throws {
        let a = try JSONValue.parse(#"{"b":2,"a":1,"c":{"z":[{"y":1,"x":2}],"Z":0}}"#)
        let b = try JSONValue.parse(#"{"c":{"Z":0,"z":[{"x":2,"y":1}]},"a":1,"b":2}"#)
        #expect(try a.serialized() == b.serialized())
        #expect(try a.jsonString() == #"{"a":1,"b":2,"c":{"Z":0,"z":[{"x":2,"y":1}]}}"#)
        // Byte order: uppercase before lowercase, "é" (0xC3 0xA9) after every ASCII key.
        #expect(try JSONValue.parse(#"{"é":1,"e":2,"E":3}"#).jsonString() == #"{"E":3,"e":2,"é":1}"#)
    }

    @Test("objects of one and two keys (written without sorting a list) follow the same rules")
    func smallObjects() throws {
        #expect(try JSONValue.object(["k\"\n": 1]).jsonString() == #"{"k\"\n":1}"#)
        for pair in [#"{"b":1,"a":[2]}"#, #"{"a":[2],"b":1}"#] {
            #expect(try JSONValue.parse(pair).jsonString() == #"{"a":[2],"b":1}"#, "\(pair)")
        }
        #expect(try JSONValue.parse(#"{"é":1,"z":2}"#).jsonString() == #"{"z":2,"é":1}"#)
        #expect(throws: JSONError.self) { try JSONValue.object(["x": .number(.nan)]).serialized() }
        #expect(throws: JSONError.self) { try JSONValue.object(["x": 1, "y": .number(.infinity)]).serialized() }
    }

    @Test("numbers are normalised: the same value parsed from any spelling gives the same text", arguments: [
        ("1", "1"), ("1.0", "1"), ("1e0", "1"), ("10E-1", "1"), ("100e-2", "1"), ("-0", "0"), ("-0.0", "0"),
        ("1e15", "1000000000000000"), ("9007199254740993", "9007199254740993"), ("2.5", "2.5"), ("0.1", "0.1"),
        ("1e-7", "1e-07"), ("1.5e300", "1.5e+300"), ("-3.25E2", "-325"),
    ])
    func numbers(source: String, canonical: String) throws {
        #expect(try JSONValue.parse(source).jsonString() == canonical)
    }

    @Test("values that compare equal have identical canonical bytes")
    func equalValuesEqualBytes() throws {
        let spellings = [
            #"{"n":[1,2.0,3e0],"s":"x","t":true,"u":null}"#, #"{"u":null,"t":true,"s":"x","n":[1.0,2,30e-1]}"#,
        ]
        let values = try spellings.map { try JSONValue.parse($0) }
        #expect(values[0] == values[1])
        #expect(try values[0].serialized() == values[1].serialized())
        #expect(try JSONValue.integer(3).serialized() == JSONValue.number(3.0).serialized())
    }

    @Test("strings are escaped minimally and otherwise written as they are")
    func strings() throws {
        let value = JSONValue.string("a\"b\\c/d\n\r\t\u{1}é😀")
        #expect(try value.jsonString() == #""a\"b\\c/d\n\r\t\u0001é😀""#)
    }
}

@Suite("Measuring the canonical form", .defaultPass)
struct SerializedCountTests {
    @Test("serializedCount() is exactly the length of serialized(), for every kind of value")
    func countsMatch() throws {
        let samples: [JSONValue] = [
            nil, true, false, 0, -1, 10, .integer(.min), .integer(.max), 1e15, -0.0, 2.5, 1e-7, 1.5e300,
            "", "plain", "a\"b\\c\n\r\t\u{1}\u{1f}é😀", [], [1, [2, [3]]], [:], ["k": ["nested": [nil, "x"]], "é": 1],
        ]
        for value in samples {
            #expect(try value.serializedCount() == value.serialized().count, "\(value)")
        }
        #expect(throws: JSONError.self) { try JSONValue.array([1, .number(.nan)]).serializedCount() }
    }

    @Test("Strings with escapes anywhere round-trip, and their count matches (runs between escapes are copied whole)")
    func escapedRuns() throws {
        var generator = SystemRandomNumberGenerator()
        let pieces = ["plain text ", "\n", "\"", "\\", "\t", "\u{1}", "é", "😀", "code { x: 1 }", "\r\n"]
        for _ in 0..<200 {
            let text = (0..<Int.random(in: 0...40, using: &generator)).map { _ in pieces.randomElement(using: &generator)! }.joined()
            let value = JSONValue.string(text)
            let bytes = try value.serialized()
            #expect(try value.serializedCount() == bytes.count)
            #expect(try JSONValue.parse(bytes) == value)
        }
    }
}

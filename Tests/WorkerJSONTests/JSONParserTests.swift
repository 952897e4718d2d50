import Testing
import TestSupport

@testable import WorkerJSON

@Suite("JSON parser", .defaultPass)
struct JSONParserTests {
    @Test("escapes, unicode and surrogate pairs")
    func strings() throws {
        #expect(try JSONValue.parse(#""a\"b\\c\/d\b\f\n\r\t""#) == .string("a\"b\\c/d\u{8}\u{c}\n\r\t"))
        #expect(try JSONValue.parse(#""\u00e9\u2603\ud83d\ude00""#) == .string("é☃😀"))
        #expect(try JSONValue.parse("\"é☃😀\"") == .string("é☃😀"))
    }

    @Test("numbers: integers stay exact, others are doubles")
    func numbers() throws {
        #expect(try JSONValue.parse("[0,-0,12,-9223372036854775808,9223372036854775807]")
            == [0, 0, 12, .integer(.min), .integer(.max)])
        #expect(try JSONValue.parse("[1.5,-2e3,1E-2,18446744073709551616]") == [1.5, -2000.0, 0.01, .number(18446744073709551616)])
    }

    @Test(
        "malformed input is refused with the byte offset",
        arguments: [
            "", "   ", "{", "[1,]", "{\"a\" 1}", "{\"a\":1,}", "01", "1.", "-", "1e", "tru", "nul", "\"abc",
            "\"\\x\"", "\"\\ud800\"", "\"\\udc00\"", "\"a\u{1}b\"", "[1] 2", "{1:2}", "NaN", "Infinity", "1e999",
        ])
    func malformed(text: String) {
        do {
            _ = try JSONValue.parse(text)
            Issue.record("accepted \(text.debugDescription)")
        } catch {
            #expect(error.description.contains("at byte"))
        }
    }

    @Test("invalid UTF-8 and excessive nesting are refused")
    func limits() throws {
        #expect(throws: JSONError.self) { try JSONValue.parse([0x22, 0xFF, 0x22]) }
        #expect(throws: JSONError.self) { try JSONValue.parse(String(repeating: "[", count: 600) + String(repeating: "]", count: 600)) }
        #expect(try JSONValue.parse(String(repeating: "[", count: 100) + String(repeating: "]", count: 100)) != .null)
    }

    @Test("whatever it parses, it serializes back to the same value")
    func roundTrips() throws {
        let samples = [
            #"{"id":"j-1","input":{"prompt":"héllo \"w\"","n":[1,2.25,{"deep":[null,true,false]}]},"webhook":"http://x/y?z=1"}"#,
            "[]", "{}", #""""#, "-0.5", #"{"\u0000":"\u001f"}"#,
        ]
        for sample in samples {
            let value = try JSONValue.parse(sample)
            #expect(try JSONValue.parse(try value.serialized()) == value)
        }
    }
}

@Suite("The parser's UTF-8 check", .defaultPass)
struct UTF8ValidationTests {
    @Test("accepts exactly what the standard library accepts", arguments: [
        [0x61], [0xC3, 0xA9], [0xE2, 0x98, 0x83], [0xF0, 0x9F, 0x98, 0x80], [0xF4, 0x8F, 0xBF, 0xBF],
        [0xC0, 0xAF], [0xC1, 0xBF], [0xE0, 0x80, 0xAF], [0xED, 0xA0, 0x80], [0xF4, 0x90, 0x80, 0x80], [0xF5, 0x80, 0x80, 0x80],
        [0x80], [0xBF], [0xC3], [0xE2, 0x98], [0xF0, 0x9F, 0x98], [0xC3, 0x41], [0xE2, 0x28, 0xA1], [0xFF], [0xFE],
    ] as [[UInt8]])
    func matchesTheStandardLibrary(bytes: [UInt8]) throws {
        let expected = String(validating: bytes, as: UTF8.self)
        let text = [0x22] + bytes + [0x22]
        let parsed = try? JSONValue.parse(text)
        #expect(parsed?.stringValue == expected, "\(bytes)")
    }
}

extension UTF8ValidationTests {
    @Test("agrees with the standard library on 100,000 random byte strings")
    func randomAgreement() {
        var generator = SystemRandomNumberGenerator()
        let interesting: [UInt8] = [0x00, 0x41, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC1, 0xC2, 0xDF, 0xE0, 0xE1, 0xEC, 0xED, 0xEE, 0xEF, 0xF0, 0xF1, 0xF3, 0xF4, 0xF5, 0xFF]
        for _ in 0..<100_000 {
            let bytes = (0..<Int.random(in: 1...6, using: &generator)).map { _ in interesting.randomElement(using: &generator)! }
            let ours = bytes.withUnsafeBufferPointer { JSONParser.isValidUTF8($0) }
            #expect(ours == (String(validating: bytes, as: UTF8.self) != nil), "\(bytes)")
        }
    }
}

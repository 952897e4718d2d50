import Testing
import TestSupport

import WorkerJSON

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

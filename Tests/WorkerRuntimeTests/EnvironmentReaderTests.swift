import Testing
import TestSupport
@testable import WorkerRuntime

/// The checks every handler's settings go through.
@Suite("Environment reader", .defaultPass)
struct EnvironmentReaderTests {
    @Test("unset, empty and blank values read as nil; spaces around a value are dropped")
    func strings() {
        let env = EnvironmentReader(["A": "", "B": "  ", "C": " value\t"])
        #expect(env.string("A") == nil)
        #expect(env.string("B") == nil)
        #expect(env.string("C") == "value")
        #expect(env.string("missing") == nil)
    }

    @Test("numbers, seconds, whole numbers and flags in range; each bad one names the variable, the value and the range")
    func numbers() throws {
        let env = EnvironmentReader([
            "RATIO": "0.25", "TIMEOUT": "1.5", "COUNT": " 7 ", "ON": "Yes", "OFF": "0",
            "BIG": "2", "WORDS": "ten", "FRACTION": "2.5", "MAYBE": "perhaps", "NAN": "nan",
        ])
        #expect(try env.number("RATIO", in: 0...1) == 0.25)
        #expect(try env.seconds("TIMEOUT", in: 0.001...10) == .milliseconds(1500))
        #expect(try env.whole("COUNT", in: 1...10) == 7)
        #expect(try env.flag("ON") == true)
        #expect(try env.flag("OFF") == false)
        #expect(try env.whole("missing", in: 1...2) == nil)

        #expect(throws: ConfigurationError.self) { try env.number("NAN", in: 0...1) }
        let big = #expect(throws: ConfigurationError.self) { try env.number("BIG", in: 0...1) }
        #expect(big?.description == "BIG='2' is not valid: expected a number from 0.0 to 1.0. Fix or unset BIG.")
        let words = #expect(throws: ConfigurationError.self) { try env.seconds("WORDS", in: 1...60) }
        #expect(words?.description == "WORDS='ten' is not valid: expected seconds from 1.0 to 60.0. Fix or unset WORDS.")
        let fraction = #expect(throws: ConfigurationError.self) { try env.whole("FRACTION", in: 1...5) }
        #expect(fraction?.description == "FRACTION='2.5' is not valid: expected a whole number from 1 to 5. Fix or unset FRACTION.")
        let maybe = #expect(throws: ConfigurationError.self) { try env.flag("MAYBE") }
        #expect(maybe?.description == "MAYBE='perhaps' is not valid: expected true or false. Fix or unset MAYBE.")
    }

    @Test("base URLs: http or https with a host, trailing slashes dropped; anything else is refused with an example")
    func baseURLs() throws {
        let env = EnvironmentReader([
            "GOOD": "https://api.example.com/v1//", "LOCAL": "http://127.0.0.1:8000", "FTP": "ftp://example.com",
            "BARE": "example.com/api", "NO_HOST": "http://", "SPACE": "https://exa mple.com",
        ])
        #expect(try env.baseURL("GOOD", example: "https://x") == "https://api.example.com/v1")
        #expect(try env.baseURL("LOCAL", example: "https://x") == "http://127.0.0.1:8000")
        #expect(try env.baseURL("missing", example: "https://x") == nil)
        for name in ["FTP", "BARE", "NO_HOST", "SPACE"] {
            let error = #expect(throws: ConfigurationError.self) { try env.baseURL(name, example: "https://api.openai.com/v1") }
            #expect(error?.variable == name)
        }
        let ftp = #expect(throws: ConfigurationError.self) { try env.baseURL("FTP", example: "https://api.openai.com/v1") }
        #expect(ftp?.description
            == "FTP='ftp://example.com' is not a usable URL: expected an http:// or https:// URL such as https://api.openai.com/v1. Fix or unset FTP.")
    }
}

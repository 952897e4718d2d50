@testable import RedisClient
import Testing
import TestSupport

@Suite("RESP: command framing and hiredis's reader building our values", .defaultPass)
struct RESPTests {
    private func read(_ text: String, chunk: Int = .max) throws -> [RedisValue] {
        let reader = RESPReader()
        var replies: [RedisValue] = []
        let bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count {
            let end = min(bytes.count, offset + chunk)
            try bytes[offset..<end].withUnsafeBytes { try reader.feed($0) }
            offset = end
            while let reply = try reader.next() { replies.append(reply) }
        }
        return replies
    }

    @Test("Commands are arrays of bulk strings, binary-safe")
    func framing() {
        var format = RESPFormat()
        var out: [UInt8] = []
        format.append(["SET", "k", RedisArgument(bytes: [0, 13, 10]), ""], to: &out)
        format.append(["GET", RedisArgument(String(repeating: "x", count: 1234))], to: &out)
        let expected = Array("*4\r\n$3\r\nSET\r\n$1\r\nk\r\n$3\r\n".utf8) + [0, 13, 10] + Array("\r\n$0\r\n\r\n".utf8)
            + Array("*2\r\n$3\r\nGET\r\n$1234\r\n\(String(repeating: "x", count: 1234))\r\n".utf8)
        #expect(out == expected)
    }

    @Test("Every reply type, nested arrays, nil and empty arrays; the same fed a byte at a time")
    func replies() throws {
        let text = "+OK\r\n-ERR wrong\r\n:42\r\n$5\r\nhello\r\n$-1\r\n*-1\r\n*0\r\n$0\r\n\r\n"
            + "*3\r\n:1\r\n*2\r\n$1\r\na\r\n*1\r\n+deep\r\n*0\r\n"
        let expected: [RedisValue] = [
            .status("OK"), .error("ERR wrong"), .integer(42), .bulk(Array("hello".utf8)), .null, .null, .array([]), .bulk([]),
            .array([.integer(1), .array([.bulk([97]), .array([.status("deep")])]), .array([])]),
        ]
        #expect(try read(text) == expected)
        #expect(try read(text, chunk: 1) == expected)
        #expect(try read(text, chunk: 7) == expected)
    }

    @Test("Bytes that are not RESP are an error, not a crash")
    func garbage() {
        #expect(throws: ReaderFailure.self) { try read("?what\r\n") }
        #expect(throws: ReaderFailure.self) { try read("$abc\r\n") }
    }

    @Test("pendingBytes counts the reply being read, for the size limit")
    func pending() throws {
        let reader = RESPReader()
        try Array("$10\r\n12345".utf8).withUnsafeBytes { try reader.feed($0) }
        #expect(try reader.next() == nil)
        #expect(reader.pendingBytes == 10)
        try Array("67890\r\n:1\r\n".utf8).withUnsafeBytes { try reader.feed($0) }
        #expect(try reader.next() == .bulk(Array("1234567890".utf8)))
        #expect(try reader.next() == .integer(1))
    }
}

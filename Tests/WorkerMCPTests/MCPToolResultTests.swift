import Synchronization
import Testing
import TestSupport
import WorkerJSON

@testable import WorkerMCP

@Suite("MCP tool results and calls in flight", .defaultPass)
struct MCPToolResultTests {
    static let outputs: [JSONValue] = [
        ["prompt": "hello", "n": 1],
        ["nested": ["list": [1, 2.5, "three", nil, true]], "quote\"key": "line\nbreak \\ \u{1}", "é": "ü"],
        [:],
        "a plain text \"quoted\"\n",
        "",
        42,
        -0.5,
        [1, "two", ["three": 3]],
        [],
        nil,
        true,
    ]

    @Test("The encoded answer is byte for byte the envelope serialized, for every kind of output, id and era")
    func encodedMatchesEnvelope() throws {
        for output in Self.outputs {
            for id: JSONValue in [1, "req-\"7\"", 0, nil] {
                for modern in [false, true] {
                    let envelope: JSONValue = ["jsonrpc": "2.0", "id": id, "result": MCPToolResult.success(output, modern: modern)]
                    let encoded = try MCPToolResult.encodedSuccess(output, id: id, modern: modern)
                    #expect(encoded == (try envelope.serialized()), "\(output) \(id) \(modern)")
                    // And it parses back to the same value.
                    #expect(try JSONValue.parse(encoded) == envelope)
                }
            }
        }
    }

    @Test("An outcome's bytes: a message serialized, encoded bytes as they are, nothing when cancelled")
    func outcomeBytes() throws {
        let message: JSONValue = ["jsonrpc": "2.0", "id": 3, "result": [:]]
        #expect(MCPCallOutcome.message(message).bytes == (try message.serialized()))
        #expect(MCPCallOutcome.encoded([1, 2, 3]).bytes == [1, 2, 3])
        #expect(MCPCallOutcome.cancelled.bytes == nil)
    }

    @Test("A cancel reaches the calls of its client and id only; finished calls are gone")
    func inFlight() {
        let calls = MCPInFlight()
        let cancelled = Counter()
        let a1 = MCPInFlight.Key(client: .session("a"), id: 1)
        let b1 = MCPInFlight.Key(client: .session("b"), id: 1)
        let stdio1 = MCPInFlight.Key(client: .stdio, id: 1)
        let first = calls.start(a1) { cancelled.add("a1-first") }
        _ = calls.start(a1) { cancelled.add("a1-second") }
        let other = calls.start(b1) { cancelled.add("b1") }
        _ = calls.start(stdio1) { cancelled.add("stdio1") }
        calls.finish(token: first)
        #expect(calls.cancel(a1))
        #expect(cancelled.names == ["a1-second"])
        #expect(!calls.cancel(a1), "a cancelled call is no longer in flight")
        calls.finish(token: other)
        #expect(!calls.cancel(b1), "a finished call cannot be cancelled")
        #expect(!calls.cancel(.init(client: .session("a"), id: "1")), "the id's type counts: 1 is not \"1\"")
        #expect(calls.cancel(stdio1))
        #expect(cancelled.names == ["a1-second", "stdio1"])
    }
}

private final class Counter: Sendable {
    private let list = Mutex<[String]>([])
    func add(_ name: String) { list.withLock { $0.append(name) } }
    var names: [String] { list.withLock { $0 } }
}

import Testing
import TestSupport
import WorkerJSON

@testable import WorkerEndpointServer

/// Connections end when the client says so, over real sockets: an HTTP/1.0 client that did not
/// ask for keep-alive (curl -0, old proxies, load-balancer health checks) reads to the end of the
/// connection, so holding it open until the idle timeout (30 s) stalls it.
@Suite("Keep-alive as the client asks", .defaultPass)
struct KeepAliveTests {
    /// Sends `requests` one after the other on one connection, reading each answer; then whether
    /// the server closed the connection within `closeWithin`.
    static func converse(_ port: Int, _ requests: [String], closeWithin: Duration = .seconds(3)) async throws -> ([RawResponse], Bool) {
        try await blocking {
            let connection = try RawConnection(port: port)
            var responses: [RawResponse] = []
            for request in requests {
                connection.write(request)
                let (text, closed) = connection.read(timeout: .seconds(10)) { RawResponse($0).isComplete }
                responses.append(RawResponse(text, closed: closed))
            }
            return (responses, connection.isClosedByPeer(within: closeWithin))
        }
    }

    @Test("HTTP/1.0 without keep-alive: an HTTP/1.0 answer with Connection: close, and the connection closed at once")
    func http10() async throws {
        try await withLiveServer { port in
            let (pings, pingClosed) = try await Self.converse(port, ["GET /ping HTTP/1.0\r\n\r\n"])
            #expect(pings[0].statusLine.hasPrefix("HTTP/1.0 200"), "\(pings[0])")
            #expect(pings[0].header("connection")?.lowercased() == "close", "\(pings[0])")
            #expect(pingClosed, "the connection was closed after the response, not held until the idle timeout")

            let run = rawRequest(
                "POST", "/runsync", host: "127.0.0.1:\(port)", headers: [("Content-Type", "application/json")], body: #"{"input":{"a":1}}"#,
                version: "HTTP/1.0")
            let (answers, runClosed) = try await Self.converse(port, [run])
            #expect(answers[0].status == 200, "\(answers[0])")
            #expect(answers[0].json?["output"] == ["a": 1], "\(answers[0])")
            #expect(answers[0].header("connection")?.lowercased() == "close", "\(answers[0])")
            #expect(answers[0].header("transfer-encoding") == nil, "no chunked encoding for an HTTP/1.0 client")
            #expect(runClosed)
        }
    }

    @Test("HTTP/1.0 with Connection: keep-alive keeps the connection for the next request; HTTP/1.1 with Connection: close is closed")
    func explicitChoices() async throws {
        try await withLiveServer { port in
            let keepAlive = "GET /ping HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
            let (answers, closed) = try await Self.converse(port, [keepAlive, keepAlive], closeWithin: .milliseconds(500))
            #expect(answers.count == 2 && answers.allSatisfy { $0.status == 200 }, "\(answers)")
            #expect(answers.allSatisfy { $0.header("connection")?.lowercased() == "keep-alive" }, "\(answers)")
            #expect(!closed, "an HTTP/1.0 keep-alive connection stays open")

            let close = "GET /ping HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nConnection: close\r\n\r\n"
            let (closing, closedAfter) = try await Self.converse(port, [close])
            #expect(closing[0].statusLine.hasPrefix("HTTP/1.1 200"), "\(closing[0])")
            #expect(closing[0].header("connection")?.lowercased() == "close", "\(closing[0])")
            #expect(closedAfter)

            // HTTP/1.1 without a word about it stays open, as before.
            let (plain, plainClosed) = try await Self.converse(
                port, ["GET /ping HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", "GET /ping HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"],
                closeWithin: .milliseconds(500))
            #expect(plain.allSatisfy { $0.status == 200 && $0.header("connection") == nil }, "\(plain)")
            #expect(!plainClosed)
        }
    }
}

import Synchronization
import Testing
import CurlHTTP
import Foundation
import TestSupport
import WorkerJSON
import WorkerRuntimeTesting

@Suite("The libcurl HTTP client against a loopback server", .defaultPass)
final class CurlHTTPClientTests: Sendable {
    let client = CurlHTTPClient(name: "test")

    deinit {
        let client = self.client
        Task { await client.shutdown() }
    }

    @Test("GET returns status, headers and body")
    func get() async throws {
        try await TestHTTPServer.run { base in
            let response = try await client.execute(HTTPClientRequest(url: "\(base)/hello"))
            #expect(response.status == 200)
            #expect(response.header("x-test") == "yes")
            #expect(response.text == "hi")
        }
    }

    @Test("POST sends a JSON body and request headers; large bodies go without a 100-continue wait")
    func postJSON() async throws {
        try await TestHTTPServer.run { base in
            let payload: JSONValue = ["text": .string(String(repeating: "z", count: 200_000))]
            let response = try await client.execute(
                try .json(url: "\(base)/echo", body: payload, headers: [("X-Custom", "42")]))
            let echoed = try JSONValue.parse(response.body)
            #expect(echoed["method"] == "POST")
            #expect(try JSONValue.parse(echoed["body"]!.stringValue!) == payload)
            #expect(echoed["headers"]?["x-custom"] == "42")
            #expect(echoed["headers"]?["content-type"] == "application/json")
            // curl would otherwise send "Expect: 100-continue" and stall up to a second.
            #expect(echoed["headers"]?["expect"] == nil)
        }
    }

    @Test("requests to one host reuse the connection (keep-alive)")
    func keepAlive() async throws {
        try await TestHTTPServer.run { base in
            var ports: Set<String> = []
            for _ in 0..<5 {
                ports.insert(try await client.execute(HTTPClientRequest(url: "\(base)/port")).text)
            }
            #expect(ports.count == 1)
        }
    }

    @Test("error statuses are responses, not errors")
    func statuses() async throws {
        try await TestHTTPServer.run { base in
            let response = try await client.execute(HTTPClientRequest(url: "\(base)/status/503"))
            #expect(response.status == 503)
            #expect(response.text == "status 503")
        }
    }

    @Test("the total timeout fails the request with an error naming the URL")
    func timeout() async throws {
        try await TestHTTPServer.run { base in
            do {
                _ = try await client.execute(HTTPClientRequest(url: "\(base)/slow", timeout: .milliseconds(200)))
                Issue.record("no timeout")
            } catch let error as HTTPClientError {
                #expect(error.isTimeout)
                #expect(error.description.contains("\(base)/slow"))
            }
        }
    }

    @Test("a refused connection is an error naming the URL and the failure")
    func refused() async throws {
        do {
            _ = try await client.execute(HTTPClientRequest(url: "http://127.0.0.1:1/nothing"))
            Issue.record("connected to port 1")
        } catch let error as HTTPClientError {
            #expect(error.description.contains("http://127.0.0.1:1/nothing"))
            #expect(error.description.lowercased().contains("connect"))
        }
    }

    @Test("an unusable URL is refused before anything is sent")
    func badURL() async throws {
        await #expect(throws: HTTPClientError.self) { try await client.execute(HTTPClientRequest(url: "ftp://x/y")) }
    }

    @Test("header names and values that could split the request are refused, byte by byte (CRLF is one Character)")
    func headerInjection() async throws {
        for header in [("X-Id", "a\r\nX-Injected: yes"), ("X-Id", "lone\rcr"), ("X-Id", "lone\nlf"), ("X-Id", "nul\u{0}"), ("X:Id", "v"), ("X Id", "v")] {
            do {
                _ = try await client.execute(HTTPClientRequest(url: "http://127.0.0.1:1/", headers: [header]))
                Issue.record("sent \(header)")
            } catch {
                #expect("\(error)".contains("line break, NUL, colon or space"), "\(error)")
            }
        }
    }

    @Test("cancelling the task aborts the transfer at once")
    func cancellation() async throws {
        try await TestHTTPServer.run { base in
            let task = Task { try await client.execute(HTTPClientRequest(url: "\(base)/slow", timeout: .seconds(30))) }
            try await Task.sleep(for: .milliseconds(100))
            let start = ContinuousClock.now
            task.cancel()
            let result = await task.result
            // The server would answer after 5 s: returning well before means the transfer was aborted.
            #expect(ContinuousClock.now - start < .seconds(3))
            guard case .failure(let error as HTTPClientError) = result else {
                Issue.record("expected a cancellation error, got \(result)")
                return
            }
            #expect(error.isCancellation)
        }
    }

    @Test("a streamed body arrives chunk by chunk as the server sends it")
    func streaming() async throws {
        try await TestHTTPServer.run { base in
            let start = ContinuousClock.now
            let response = try await client.stream(HTTPClientRequest(url: "\(base)/stream?id=chunked"))
            #expect(response.head.status == 200)
            #expect(response.head.header("content-type") == "text/event-stream")
            var chunks: [(String, Duration)] = []
            for try await chunk in response.body {
                chunks.append((String(decoding: chunk, as: UTF8.self), ContinuousClock.now - start))
            }
            #expect(chunks.map(\.0).joined() == "data: 0\n\ndata: 1\n\ndata: 2\n\n")
            #expect(chunks.count >= 2)
            // The first chunk was in hand before the server even wrote its last one.
            let lastWrite = try #require(TestHTTPServer.streamWrites.withLock { $0["chunked"]?.last })
            #expect(start + chunks[0].1 < lastWrite)
        }
    }

    @Test("stopping early, or dropping the body unread, aborts the transfer")
    func streamAbort() async throws {
        try await TestHTTPServer.run { base in
            let client = self.client
            // A break after the first chunk; the code goes on afterwards.
            do {
                let response = try await client.stream(HTTPClientRequest(url: "\(base)/stream?id=broken&count=50&gap=50"))
                for try await _ in response.body { break }
            }
            // A body never read at all.
            _ = try await client.stream(HTTPClientRequest(url: "\(base)/stream?id=dropped&count=50&gap=50"))
            // The server sees both clients go away long before its 50 chunks (2.5 s) are written.
            try await waitUntil("the server to see both transfers aborted", timeout: .seconds(2)) {
                TestHTTPServer.streamsAbandoned.withLock { $0.isSuperset(of: ["broken", "dropped"]) }
            }
            // The client still works afterwards: the aborted transfers left nothing stuck.
            #expect(try await client.execute(HTTPClientRequest(url: "\(base)/hello")).text == "hi")
        }
    }

    @Test("many concurrent requests all complete")
    func concurrent() async throws {
        try await TestHTTPServer.run { base in
            let texts = try await withThrowingTaskGroup(of: String.self) { group in
                for _ in 0..<64 { group.addTask { try await self.client.execute(HTTPClientRequest(url: "\(base)/hello")).text } }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(texts == Array(repeating: "hi", count: 64))
        }
    }

    @Test("shutdown fails the requests in flight, refuses later ones, and ends the client's thread")
    func shutdown() async throws {
        try await TestHTTPServer.run { base in
            let client = CurlHTTPClient(name: "short-lived")
            let pending = Task { try await client.execute(HTTPClientRequest(url: "\(base)/slow", timeout: .seconds(30))) }
            try await Task.sleep(for: .milliseconds(100))
            await client.shutdown()
            let result = await pending.result
            guard case .failure(let error as HTTPClientError) = result else {
                Issue.record("expected a shut-down error, got \(result)")
                return
            }
            #expect(error.description.contains("shut down"))
            await #expect(throws: HTTPClientError.self) { try await client.execute(HTTPClientRequest(url: "\(base)/hello")) }
        }
    }

    @Test("clients do not leak threads: each one's thread ends when it is shut down or dropped")
    func noThreadLeak() async throws {
        try await TestHTTPServer.run { base in
            // Other suites run in this process too: compare against a signal of 20 threads, not exact counts.
            var clients: [CurlHTTPClient] = []
            for round in 0..<20 {
                let client = CurlHTTPClient(name: "round-\(round)")
                #expect(try await client.execute(HTTPClientRequest(url: "\(base)/hello")).text == "hi")
                clients.append(client)
            }
            let withClients = Self.threadCount()
            for (index, client) in clients.enumerated() where index.isMultiple(of: 2) { await client.shutdown() }
            // The other half are just dropped: their deinit ends their threads.
            clients.removeAll()
            try await waitUntil("the clients' threads to end", timeout: .seconds(5)) { Self.threadCount() <= withClients - 15 }
        }
    }

    static func threadCount() -> Int {
        (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task").count) ?? 0
    }
}

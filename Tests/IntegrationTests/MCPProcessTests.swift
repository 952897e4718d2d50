import CurlHTTP
import Foundation
import Testing
import TestSupport
import WorkerJSON
import WorkerRuntimeTesting

/// MCP over real sockets against the `echo` process: what depends on connections (two requests
/// with one id, a client hanging up, a cancel on another connection, SSE) and on the process
/// (`--mcp` on standard input and output).
@Suite("MCP against the echo process", .tags(.process), .defaultPass)
struct MCPProcessTests {
    let client = CurlHTTPClient(name: "mcp-process-tests")

    func worker(_ environment: [String: String] = [:]) async throws -> (ChildProcess, Int) {
        let worker = try ChildProcess("echo", arguments: ["--local", "--port", "0"], environment: environment)
        return (worker, try await worker.servingPort())
    }

    func call(_ port: Int, _ message: JSONValue, headers: [(String, String)] = []) async throws -> (status: Int, body: JSONValue?) {
        var request = try HTTPClientRequest.json(url: "http://127.0.0.1:\(port)/mcp", body: message)
        request.headers.append(("Accept", "application/json, text/event-stream"))
        request.headers += headers
        let response = try await client.execute(request)
        return (response.status, try? JSONValue.parse(response.body))
    }

    func inProgress(_ port: Int) async throws -> Int {
        let response = try await client.execute(HTTPClientRequest(url: "http://127.0.0.1:\(port)/health"))
        return try JSONValue.parse(response.body)["jobs"]?["inProgress"]?.intValue ?? -1
    }

    static func toolCall(id: JSONValue, _ arguments: JSONValue, token: JSONValue? = nil) -> JSONValue {
        var params: [String: JSONValue] = ["name": "echo", "arguments": arguments]
        if let token { params["_meta"] = ["progressToken": token] }
        return ["jsonrpc": "2.0", "id": id, "method": "tools/call", "params": .object(params)]
    }

    @Test("requests with the same JSON-RPC id in flight at once each get their own answer")
    func sameID() async throws {
        let (worker, port) = try await worker(["WORKER_CONCURRENCY": "8"])
        defer { worker.signal(SIGKILL) }
        let answers = try await withThrowingTaskGroup(of: (Int, JSONValue?).self) { group in
            for index in 0..<8 {
                // Later requests finish first, so a server that matched answers by id would cross them.
                group.addTask {
                    let sent = Self.toolCall(id: 1, ["n": .integer(Int64(index)), "sleep": .number(Double(8 - index) * 0.05)])
                    return (index, try await call(port, sent).body)
                }
            }
            var answers: [(Int, JSONValue?)] = []
            for try await answer in group { answers.append(answer) }
            return answers
        }
        #expect(answers.count == 8)
        for (index, body) in answers {
            #expect(body?["id"] == 1)
            #expect(body?["result"]?["structuredContent"]?["n"] == .integer(Int64(index)))
        }
    }

    @Test("a client that hangs up mid-call cancels its job; the worker goes on serving")
    func hangUp() async throws {
        let (worker, port) = try await worker()
        defer { worker.signal(SIGKILL) }
        let connection = try RawConnection(port: port)
        let body = try Self.toolCall(id: 5, ["sleep": 60]).jsonString()
        connection.write(
            "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nAccept: application/json\r\n"
                + "Content-Length: \(body.utf8.count)\r\n\r\n\(body)")
        try await waitUntil("the call to start") { try await inProgress(port) == 1 }
        connection.hangUp()
        try await waitUntil("the job to be cancelled", timeout: .seconds(10)) { try await inProgress(port) == 0 }
        try await waitUntil("the stop in the log") { worker.stderr.contains("Job stopped") }
        #expect(try await call(port, Self.toolCall(id: 6, ["after": true])).body?["result"]?["structuredContent"] == ["after": true])
    }

    @Test("notifications/cancelled from the same session stops the call, whose POST then ends (no hang); no other client's does")
    func cancelNotification() async throws {
        let (worker, port) = try await worker()
        defer { worker.signal(SIGKILL) }
        let initialize: JSONValue = [
            "jsonrpc": "2.0", "id": 0, "method": "initialize",
            "params": ["protocolVersion": "2025-06-18", "capabilities": [:], "clientInfo": ["name": "t", "version": "1"]],
        ]
        var request = try HTTPClientRequest.json(url: "http://127.0.0.1:\(port)/mcp", body: initialize)
        request.headers.append(("Accept", "application/json, text/event-stream"))
        let initialized = try await client.execute(request)
        let session = try #require(initialized.header("Mcp-Session-Id"))
        #expect(session.count == 32)
        let mine = [("Mcp-Session-Id", session)]
        let pending = Task { try await call(port, Self.toolCall(id: "slow", ["sleep": 60]), headers: mine) }
        try await waitUntil("the call to start") { try await inProgress(port) == 1 }
        let cancel: JSONValue = ["jsonrpc": "2.0", "method": "notifications/cancelled", "params": ["requestId": "slow"]]
        // Other clients' cancels with the same id must not touch it: one with the same (absent) key
        // from the same address, one with a session of its own, one with another key.
        for headers in [[], [("Mcp-Session-Id", "someone-else")], [("Authorization", "Bearer someone-else")]] {
            #expect(try await call(port, cancel, headers: headers).status == 202)
        }
        try await Task.sleep(for: .milliseconds(300))
        #expect(try await inProgress(port) == 1)
        #expect(try await call(port, cancel, headers: mine).status == 202)
        let answer = try await withTimeout(.seconds(10)) { try await pending.value }
        #expect(answer.body?["error"]?["code"] == -32800)
        #expect(try await inProgress(port) == 0)
    }

    @Test("progress as SSE events before the answer, when the client takes SSE and sent a token")
    func sseProgress() async throws {
        let (worker, port) = try await worker()
        defer { worker.signal(SIGKILL) }
        var request = try HTTPClientRequest.json(url: "http://127.0.0.1:\(port)/mcp", body: Self.toolCall(id: 9, ["progress": 3], token: "p"))
        request.headers.append(("Accept", "application/json, text/event-stream"))
        let response = try await client.execute(request)
        #expect(response.header("Content-Type") == "text/event-stream")
        let events = String(decoding: response.body, as: UTF8.self).split(separator: "\n").filter { $0.hasPrefix("data: ") }
            .map { try? JSONValue.parse(String($0.dropFirst(6))) }
        #expect(events.count == 4)
        #expect(events.prefix(3).map { $0?["params"]?["progress"] } == [1, 2, 3])
        #expect(events.last??["result"]?["structuredContent"] == ["progress": 3])
    }

    @Test("the API key guards /mcp (401 without it); GET and DELETE are 405; a foreign Origin is 403")
    func guards() async throws {
        let (worker, port) = try await worker(["RUNPOD_API_KEY": "secret"])
        defer { worker.signal(SIGKILL) }
        let ping: JSONValue = ["jsonrpc": "2.0", "id": 1, "method": "ping"]
        #expect(try await call(port, ping).status == 401)
        let key = ("Authorization", "Bearer secret")
        #expect(try await call(port, ping, headers: [key]).body?["result"] == [:])
        #expect(try await call(port, ping, headers: [key, ("Origin", "https://evil.example")]).status == 403)
        #expect(try await call(port, ping, headers: [key]).status == 200)
        var get = HTTPClientRequest(url: "http://127.0.0.1:\(port)/v2/abc/mcp")
        get.headers.append(key)
        #expect(try await client.execute(get).status == 405)
        #expect(try await call(port, ping, headers: [key, ("MCP-Protocol-Version", "1999-01-01")]).status == 400)
    }

    @Test("--mcp over stdio: a stray line of garbage gets a parse error and the server goes on; EOF ends the process")
    func stdio() async throws {
        let worker = try ChildProcess("echo", arguments: ["--mcp"], standardInput: true)
        defer { worker.signal(SIGKILL) }
        worker.writeInput("not json\n")
        worker.writeInput(#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"x":1}}}"# + "\n")
        try await waitUntil("two answers on standard output") { worker.stdout.split(separator: "\n").count >= 2 }
        let lines = worker.stdout.split(separator: "\n").map { try? JSONValue.parse(String($0)) }
        #expect(lines[0]?["error"]?["code"] == -32700)
        #expect(lines[1]?["result"]?["structuredContent"] == ["x": 1])
        #expect(!worker.stdout.contains("Serving MCP"), "logs go to standard error, never into the protocol stream")
        worker.closeInput()
        #expect(try await worker.wait() == 0)
    }
}

/// SSE answers to clients that never read: bounded per response, and a stalled call ends.
@Suite("MCP over HTTP with clients that do not read", .tags(.process, .heavy), .pass(.heavy))
struct MCPUnreadSSETests {
    private static func send(_ arguments: JSONValue, to port: Int) throws -> RawConnection {
        let body = try MCPProcessTests.toolCall(id: 1, arguments, token: "p").jsonString()
        let connection = try RawConnection(port: port, receiveBuffer: 4096)
        connection.write(
            "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                + "Accept: application/json, text/event-stream\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)")
        return connection
    }

    @Test("10 clients taking a burst of 100,000 progress updates each and reading none: only the newest wait, memory stays flat")
    func progressBurst() async throws {
        let worker = try ChildProcess("echo", arguments: ["--local", "--port", "0"], environment: ["WORKER_CONCURRENCY": "8"])
        defer { worker.signal(SIGKILL) }
        let port = try await worker.servingPort()
        let before = worker.residentBytes
        // The updates come at once, then the jobs sleep: whatever is held for the readers is held now.
        let connections = try (0..<10).map { _ in try Self.send(["progress": 100_000, "sleep": 8], to: port) }
        try await Task.sleep(for: .seconds(5))
        let during = worker.residentBytes
        // Unbounded, each response held its 100,000 updates: 373 MB more for these 10 (88 MB now).
        #expect(during - before < 160 << 20, "the worker grew from \(before >> 20) MB to \(during >> 20) MB")
        _ = connections
    }

    @Test("A client that accepts no SSE bytes for HTTP_IDLE_TIMEOUT: its call is cancelled, its connection closed; others are served")
    func stalledWrites() async throws {
        let worker = try ChildProcess(
            "echo", arguments: ["--local", "--port", "0"], environment: ["HTTP_IDLE_TIMEOUT": "2", "WORKER_CONCURRENCY": "8"])
        defer { worker.signal(SIGKILL) }
        let port = try await worker.servingPort()
        // 20,000 updates of 1 KB over 20 s: megabytes a second, soon more than the socket holds.
        let note = JSONValue.string(String(repeating: "n", count: 900))
        let connections = try (0..<2).map { _ in try Self.send(["progress": 20_000, "sleep": 20, "note": note], to: port) }
        try await waitUntil("the write deadline", timeout: .seconds(15)) {
            worker.stderr.components(separatedBy: "accepted no SSE bytes").count - 1 == 2
        }
        // Cancelled, not finished: their jobs would sleep for 20 s more.
        let client0 = CurlHTTPClient(name: "mcp-unread-health")
        try await waitUntil("the calls' jobs to stop", timeout: .seconds(5)) {
            let health = try await client0.execute(HTTPClientRequest(url: "http://127.0.0.1:\(port)/health"))
            return try JSONValue.parse(health.body)["jobs"]?["inProgress"]?.intValue == 0
        }
        let client = CurlHTTPClient(name: "mcp-unread")
        let ping = try await client.execute(HTTPClientRequest(url: "http://127.0.0.1:\(port)/ping"))
        #expect(ping.status == 200)
        _ = connections
    }
}

/// A stdio client that stops reading its answers: the worker stops reading its requests once
/// 64 MB of answers wait, instead of holding them all; the answers all arrive once it reads.
@Suite("MCP over stdio with a client that does not read", .tags(.process, .heavy), .pass(.heavy))
struct MCPStdioBackpressureTests {
    @Test("120 answers of 1 MB (2 MB each as MCP sends them), unread: memory stays bounded; every answer arrives once read")
    func unreadAnswers() async throws {
        let count = 120
        let worker = try await stalledWorker(calls: count)
        defer { worker.signal(SIGKILL) }
        let resident = worker.residentBytes
        // Unbounded, the answers alone would be 240 MB beside the results the job store keeps.
        #expect(resident < 250 << 20, "the worker holds \(resident >> 20) MB of unread answers")
        var answers = 0
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        let deadline = ContinuousClock.now + .seconds(120)
        while answers < count, ContinuousClock.now < deadline {
            let read = worker.readOutput(into: &buffer)
            guard read > 0 else { break }
            answers += buffer[0..<read].reduce(0) { $0 + ($1 == UInt8(ascii: "\n") ? 1 : 0) }
        }
        #expect(answers == count)
    }

    /// A worker whose client sent `calls` calls of 2 MB answers and read none, once it has done all
    /// it will do while nobody reads (its CPU time settles).
    private func stalledWorker(calls: Int = 40) async throws -> ChildProcess {
        let worker = try ChildProcess("echo", arguments: ["--mcp"], standardInput: true, captureOutput: false)
        // Writes block once the worker stops reading: from a thread of their own.
        let writer = Thread {
            for index in 0..<calls {
                worker.writeInput(
                    #"{"jsonrpc":"2.0","id":\#(index),"method":"tools/call","params":{"name":"echo","arguments":{"size":1048576}}}"# + "\n")
            }
        }
        writer.start()
        var last = worker.cpuTime
        for _ in 0..<90 {
            try await Task.sleep(for: .seconds(1))
            let now = worker.cpuTime
            if now - last < .milliseconds(30) { break }
            last = now
        }
        return worker
    }

    @Test("A client that closes its input without reading any answer: the worker ends (it once waited forever)")
    func eofWhileUnread() async throws {
        let worker = try await stalledWorker()
        defer { worker.signal(SIGKILL) }
        worker.closeInput()
        #expect(try await worker.wait(timeout: .seconds(20)) == 0)
        #expect(worker.stderr.contains("stopped reading"))
    }

    @Test("SIGTERM while the client reads nothing: the worker ends (one signal is enough)")
    func sigtermWhileUnread() async throws {
        let worker = try await stalledWorker()
        defer { worker.signal(SIGKILL) }
        worker.signal(SIGTERM)
        _ = try await worker.wait(timeout: .seconds(20))
    }
}


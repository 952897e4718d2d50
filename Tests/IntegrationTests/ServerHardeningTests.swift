import CurlHTTP
import Foundation
import Testing
import TestSupport
import WorkerJSON
import WorkerRuntimeTesting

/// The HTTP modes against clients that misbehave: real sockets to a real worker process. Hundreds
/// of connections at once: in the heavy pass, away from the default pass's timing checks.
@Suite("HTTP clients that misbehave", .tags(.process, .heavy), .pass(.heavy))
struct ServerHardeningTests {
    /// An echo worker in `--local` mode on a free port.
    func worker(_ environment: [String: String] = [:], descriptorLimit: Int? = nil) async throws -> (ChildProcess, Int) {
        let worker = try ChildProcess(
            "echo", arguments: ["--local", "--port", "0"], environment: environment, descriptorLimit: descriptorLimit)
        return (worker, try await worker.servingPort())
    }

    func ping(_ port: Int, within timeout: Duration = .seconds(5)) -> Bool {
        guard let connection = try? RawConnection(port: port) else { return false }
        connection.write("GET /ping HTTP/1.1\r\nHost: x\r\n\r\n")
        return connection.read(timeout: timeout) { $0.contains("\r\n\r\n") }.text.hasPrefix("HTTP/1.1 200")
    }

    @Test("an oversized body with Connection: close, written whole before reading: the client gets the 413, then the close")
    func oversizedThenClose() async throws {
        let (worker, port) = try await worker()
        defer { worker.signal(SIGKILL) }
        let connection = try RawConnection(port: port)
        let body = [UInt8](repeating: UInt8(ascii: "x"), count: 12 << 20)
        connection.write("POST /run HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: \(body.count)\r\nConnection: close\r\n\r\n")
        // As Python's http.client does: the whole body, then read.
        let wrote = connection.write(body)
        let (answer, closed) = connection.read(timeout: .seconds(10))
        #expect(wrote, "the server read (and dropped) the body instead of leaving the client blocked")
        #expect(answer.hasPrefix("HTTP/1.1 413"), "\(answer.prefix(200))")
        #expect(answer.lowercased().contains("connection: close"))
        #expect(closed, "the server closed the connection after the 413")
        // A body past what the server will drain is cut off, not read for ever.
        let huge = try RawConnection(port: port)
        huge.write("POST /run HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 10000000000\r\n\r\n")
        let started = ContinuousClock.now
        var sent = 0
        let chunk = [UInt8](repeating: 0x20, count: 1 << 20)
        while sent < (200 << 20), huge.write(chunk) { sent += chunk.count }
        #expect(sent < (200 << 20), "the server stopped reading a 10 GB body")
        #expect(ContinuousClock.now - started < .seconds(15))
        #expect(ping(port))
    }

    @Test("Expect: 100-continue is answered at once for a body within the limit; a larger one gets the 413 instead")
    func expectContinue() async throws {
        let (worker, port) = try await worker()
        defer { worker.signal(SIGKILL) }
        let input = #"{"input":{"text":"\#(String(repeating: "a", count: 2 << 20))"}}"#
        let connection = try RawConnection(port: port)
        connection.write(
            "POST /runsync HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: \(input.utf8.count)\r\nExpect: 100-continue\r\n\r\n")
        // Without the answer the server would wait for the body and the client for the answer.
        let interim = connection.read(timeout: .seconds(3)) { $0.contains("\r\n\r\n") }.text
        #expect(interim.hasPrefix("HTTP/1.1 100 Continue"), "\(interim)")
        connection.write(input)
        let final = connection.read(timeout: .seconds(10)) { $0.contains("\"COMPLETED\"") }.text
        #expect(final.contains("HTTP/1.1 200"), "\(final.prefix(300))")

        let large = try RawConnection(port: port)
        large.write("POST /run HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: \(20 << 20)\r\nExpect: 100-continue\r\n\r\n")
        let refused = large.read(timeout: .seconds(5)) { $0.contains("\r\n\r\n") }.text
        #expect(refused.hasPrefix("HTTP/1.1 413"), "\(refused)")
    }

    @Test("slowloris: connections that never finish their headers, and idle keep-alive ones, are closed after HTTP_IDLE_TIMEOUT")
    func slowClients() async throws {
        let (worker, port) = try await worker(["HTTP_IDLE_TIMEOUT": "3"])
        defer { worker.signal(SIGKILL) }
        let baseline = worker.openDescriptors
        // 300 clients dribbling header lines, 300 idle after one request (each answered: accepted).
        var slow: [RawConnection] = []
        for index in 0..<300 {
            let connection = try RawConnection(port: port)
            connection.write("GET /ping HTTP/1.1\r\nHost: x\r\nX-Slow-\(index): ")
            slow.append(connection)
        }
        var idle: [RawConnection] = []
        for _ in 0..<300 {
            let connection = try RawConnection(port: port)
            connection.write("GET /ping HTTP/1.1\r\nHost: x\r\n\r\n")
            #expect(connection.read(timeout: .seconds(10)) { $0.contains("\r\n\r\n") }.text.hasPrefix("HTTP/1.1 200"))
            idle.append(connection)
        }
        // Others are served meanwhile, and the dribblers keep dribbling: header bytes are not progress.
        #expect(ping(port))
        for _ in 0..<3 {
            try await Task.sleep(for: .milliseconds(300))
            for connection in slow { connection.write("a") }
        }
        #expect(slow.allSatisfy { $0.isClosedByPeer(within: .seconds(10)) }, "every slowloris connection was closed")
        #expect(idle.allSatisfy { $0.isClosedByPeer(within: .seconds(10)) }, "every idle connection was closed")
        try await waitUntil("the worker to release the descriptors", timeout: .seconds(10)) { worker.openDescriptors <= baseline + 5 }
        #expect(ping(port))
    }

    @Test("HTTP_MAX_CONNECTIONS caps open connections; the rest wait their turn and are served")
    func connectionCap() async throws {
        let (worker, port) = try await worker(["HTTP_MAX_CONNECTIONS": "20", "HTTP_IDLE_TIMEOUT": "1"])
        defer { worker.signal(SIGKILL) }
        let baseline = worker.openDescriptors
        var held: [RawConnection] = []
        for _ in 0..<60 { held.append(try RawConnection(port: port)) }
        try await Task.sleep(for: .milliseconds(300))
        // 20 connections, and a few descriptors the worker may open meanwhile (60 if uncapped).
        #expect(worker.openDescriptors <= baseline + 25, "\(worker.openDescriptors - baseline) connections accepted")
        try await waitUntil("the cap warning in the log") { worker.stderr.contains("HTTP_MAX_CONNECTIONS") }
        // Idle ones time out, so a waiting client is served after a while.
        #expect(ping(port, within: .seconds(10)))
        held.removeAll()
    }

    @Test("at the descriptor limit the worker neither crashes nor spins; it serves again once clients leave")
    func descriptorLimit() async throws {
        let (worker, port) = try await worker(["HTTP_IDLE_TIMEOUT": "2"], descriptorLimit: 128)
        defer { worker.signal(SIGKILL) }
        var held: [RawConnection] = []
        // Past the cap (32 here) and within the listen backlog (256), so no connect waits on SYN retries.
        for _ in 0..<250 {
            guard let connection = try? RawConnection(port: port) else { break }
            held.append(connection)
        }
        let before = worker.cpuTime
        try await Task.sleep(for: .seconds(1))
        let spent = worker.cpuTime - before
        #expect(spent < .milliseconds(300), "the worker used \(spent) of CPU in a second with its connections full")
        held.removeAll()
        #expect(ping(port, within: .seconds(10)))
        worker.signal(SIGTERM)
        #expect(try await worker.wait() == 0)
    }

    @Test("SIGTERM with jobs queued: they are cancelled and the log says how many; the running one finishes")
    func queuedOnShutdown() async throws {
        let (worker, port) = try await worker()
        let client = CurlHTTPClient(name: "shutdown-test")
        defer { Task { await client.shutdown() } }
        for seconds in [3.0, 3, 3, 3] {
            let response = try await client.execute(try .json(url: "http://127.0.0.1:\(port)/run", body: ["input": ["sleep": .number(seconds)]]))
            #expect(response.status == 200)
        }
        worker.signal(SIGTERM)
        #expect(try await worker.wait(timeout: .seconds(15)) == 0)
        // However slow the machine, every job either started (and finished) or is counted as dropped.
        let log = worker.stderr
        let started = log.components(separatedBy: "| Started.").count - 1
        let finished = log.components(separatedBy: "| Finished.").count - 1
        #expect(started >= 1 && started == finished, "\(log.suffix(800))")
        #expect(log.contains("Shutting down: \(4 - started) queued job(s) dropped"), "\(log.suffix(800))")
    }
}

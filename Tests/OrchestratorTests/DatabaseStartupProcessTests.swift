#if canImport(Glibc)
import Glibc
#endif
import CurlHTTP
import Foundation
import Testing
import TestSupport
import WorkerRuntimeTesting

/// `orchestrator --local` processes on a wrong `DATABASE_URL`: what `/ping` says while start-up
/// waits and after it gave up, and a SIGTERM while it waits.
@Suite(
    "orchestrator start-up on a wrong DATABASE_URL (processes)", .tags(.process, .servers), .pass(.servers), .serialized,
    .enabled(if: PostgresTestServer.isInstalled, "postgresql is installed by scripts/test.sh"))
struct DatabaseStartupProcessTests {
    static let password = "pw-\(UInt32.random(in: 0...UInt32.max))-never-shown"

    private static func ping(_ worker: LocalWorker) async throws -> (status: Int, body: String) {
        let response = try await worker.client.execute(HTTPClientRequest(url: "\(worker.base)/ping"))
        return (response.status, response.text)
    }

    @Test("A database that does not exist: /ping answers 503 within seconds, naming it; no answer or log line shows the password")
    func missingDatabase() async throws {
        let server = try PostgresTestServer()
        let worker = try await LocalWorker.start(
            "orchestrator", environment: ["DATABASE_URL": "postgresql://postgres:\(Self.password)@127.0.0.1:\(server.port)/no_such_db?sslmode=disable"],
            ready: false)
        defer { worker.stop() }
        try await waitUntil("/ping to answer 503 (stderr: \(worker.process.stderr.suffix(800)))", timeout: .seconds(10), every: .milliseconds(50)) {
            try await Self.ping(worker).status == 503
        }
        let body = try await Self.ping(worker).body
        #expect(body.contains("no_such_db") && body.contains("3D000") && !body.contains(Self.password), "\(body)")
        #expect(worker.process.stderr.contains("no_such_db") && !worker.process.stderr.contains(Self.password))
    }

    @Test("An unreachable server: /ping answers 204 (starting) while start-up waits, then 503 after DATABASE_STARTUP_TIMEOUT")
    func unreachable() async throws {
        let port = RedisTestServer.unusedPort()
        let worker = try await LocalWorker.start(
            "orchestrator",
            environment: [
                "DATABASE_URL": "postgresql://postgres:\(Self.password)@127.0.0.1:\(port)/leads?sslmode=disable", "DATABASE_STARTUP_TIMEOUT": "8",
            ],
            ready: false)
        defer { worker.stop() }
        let started = ContinuousClock.now
        #expect(try await Self.ping(worker).status == 204, "still starting")
        try await waitUntil("/ping to answer 503 (stderr: \(worker.process.stderr.suffix(800)))", timeout: .seconds(25), every: .milliseconds(50)) {
            try await Self.ping(worker).status == 503
        }
        #expect(ContinuousClock.now - started >= .seconds(1), "start-up waited for the server")
        let body = try await Self.ping(worker).body
        #expect(body.contains("DATABASE_STARTUP_TIMEOUT") && !body.contains(Self.password), "\(body)")
        #expect(worker.process.stderr.contains("PostgreSQL is unavailable") && !worker.process.stderr.contains(Self.password))
    }

    @Test("SIGTERM while start-up waits for a server that never answers: one signal ends the process within seconds")
    func sigtermDuringTheWait() async throws {
        let silent = try SilentListener()
        defer { withExtendedLifetime(silent) {} }
        let worker = try await LocalWorker.start(
            "orchestrator",
            environment: [
                "DATABASE_URL": "postgresql://postgres@127.0.0.1:\(silent.port)/leads?sslmode=disable", "DATABASE_CONNECT_TIMEOUT": "30",
                "DATABASE_STARTUP_TIMEOUT": "600",
            ],
            ready: false)
        defer { if worker.process.process.isRunning { worker.stop(SIGKILL) } }
        try await Task.sleep(for: .milliseconds(500))
        #expect(try await Self.ping(worker).status == 204, "still waiting for the database")
        let signalled = ContinuousClock.now
        worker.stop(SIGTERM)
        _ = try await worker.process.wait(timeout: .seconds(10))
        #expect(ContinuousClock.now - signalled < .seconds(5), "one SIGTERM ends the wait (stderr: \(worker.process.stderr.suffix(800)))")
    }
}

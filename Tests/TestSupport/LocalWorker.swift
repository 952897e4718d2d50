import CurlHTTP
import Foundation
import WorkerJSON
import WorkerRuntimeTesting

/// A handler executable serving the endpoint API on a port it picked itself (`--port 0`, or
/// `PORT=0`): the port is read from its log, so no other process can take it in between.
package struct LocalWorker: Sendable {
    package let process: ChildProcess
    package let port: Int
    package let client: CurlHTTPClient
    package var base: String { "http://127.0.0.1:\(port)" }

    /// Starts `product --local --port 0 [arguments]` and waits until its health check answers 200.
    package static func start(
        _ product: String, arguments: [String] = [], environment: [String: String] = [:], ready: Bool = true
    ) async throws -> LocalWorker {
        let process = try ChildProcess(product, arguments: ["--local", "--port", "0"] + arguments, environment: environment)
        let worker = LocalWorker(process: process, port: try await process.servingPort(), client: CurlHTTPClient(name: "test-worker-client"))
        if ready { try await worker.waitUntilHealthy() }
        return worker
    }

    package func waitUntilHealthy(timeout: Duration = .seconds(30)) async throws {
        try await waitUntil("\(base)/ping to answer 200 (stderr: \(process.stderr.suffix(500)))", timeout: timeout, every: .milliseconds(20)) {
            (try? await client.execute(HTTPClientRequest(url: "\(base)/ping")))?.status == 200
        }
    }

    /// POSTs `{"input": input}` to /runsync and returns the answer's JSON.
    package func runSync(_ input: JSONValue, timeout: Duration = .seconds(30)) async throws -> JSONValue {
        let response = try await client.execute(try .json(url: "\(base)/runsync", body: ["input": input], timeout: timeout))
        return try JSONValue.parse(response.body)
    }

    package func stop(_ signal: Int32 = SIGTERM) {
        process.signal(signal)
    }
}

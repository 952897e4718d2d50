import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import Testing

@testable import WorkerRuntime

/// Runs the endpoint API for `handler` in-process (no socket) while `body` runs.
func withServer(
    _ handler: some RawJobHandler, options: WorkerOptions = WorkerOptions(), environment: [String: String] = [:],
    server: ServerConfiguration = ServerConfiguration(), ready: Bool = true,
    _ body: @escaping @Sendable (any TestClientProtocol, LocalServer) async throws -> Void
) async throws {
    let runtime = WorkerRuntime(handler: handler, options: options)
    let config = try testConfiguration(environment: environment)
    let local = runtime.makeServer(server, configuration: config, logger: Logger(label: "test"))
    if ready { local.health.set(.ready) }
    let app = Application(router: local.makeRouter())
    let janitor = Task { await local.store.runJanitor() }
    defer { janitor.cancel() }
    try await app.test(.router) { client in
        try await withTimeout { try await body(client, local) }
    }
}

extension TestClientProtocol {
    /// Sends a request and returns the status and the JSON body (nil when empty or not JSON).
    @discardableResult
    func call(
        _ method: HTTPRequest.Method, _ uri: String, json: JSONValue? = nil, raw: String? = nil,
        headers: HTTPFields = [:]
    ) async throws -> (status: Int, body: JSONValue?, headers: HTTPFields) {
        var buffer: ByteBuffer?
        if let json { buffer = ByteBuffer(bytes: try json.serialized()) }
        if let raw { buffer = ByteBuffer(string: raw) }
        var headers = headers
        if buffer != nil { headers[.contentType] = "application/json" }
        return try await execute(uri: uri, method: method, headers: headers, body: buffer) { response in
            let body = try? JSONValue.parse(response.body.readableBytesView)
            return (Int(response.status.code), body, response.headers)
        }
    }

    /// Polls /status until the job is final.
    func waitForFinal(_ id: String, prefix: String = "") async throws -> JSONValue {
        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline {
            let (_, body, _) = try await call(.get, "\(prefix)/status/\(id)")
            if let status = body?["status"]?.stringValue, ["COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT"].contains(status) {
                return body!
            }
            try await Task.sleep(for: .milliseconds(10))
        }
        throw TimeoutErrorForTests(what: "job \(id) to finish")
    }

    func waitForStatus(_ id: String, _ status: String) async throws {
        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline {
            if try await call(.get, "/status/\(id)").body?["status"]?.stringValue == status { return }
            try await Task.sleep(for: .milliseconds(5))
        }
        throw TimeoutErrorForTests(what: "job \(id) to be \(status)")
    }
}

struct TimeoutErrorForTests: Error, CustomStringConvertible {
    let what: String
    var description: String { "timed out waiting for \(what)" }
}

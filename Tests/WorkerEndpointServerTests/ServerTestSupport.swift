import CurlHTTP
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import Synchronization
import Testing
import TestSupport
import WorkerJSON
import WorkerRuntimeTesting

@testable import WorkerEndpointServer
@testable import WorkerOpenAI
@testable import WorkerRuntime

/// A clock the tests move by hand: the job store reads it instead of waiting out TTLs and
/// retention periods.
final class TestClock: Sendable {
    private let offset = Mutex<Duration>(.zero)
    var now: ContinuousClock.Instant { ContinuousClock.now + offset.withLock { $0 } }
    func advance(by duration: Duration) { offset.withLock { $0 += duration } }
}

let serverTestHTTPClient = CurlHTTPClient(name: "server-tests")

/// An echo handler whose jobs with input `blocking` wait until the gate opens.
func gatedEcho(blocking: JSONValue) -> (ClosureHandler, AsyncSignalBox) {
    let gate = AsyncSignalBox()
    let handler = ClosureHandler { input, _ in
        if input == blocking { await gate.wait() }
        return input
    }
    return (handler, gate)
}

/// Runs the endpoint API for `handler` in-process (no socket) while `body` runs.
func withServer(
    _ handler: some RawJobHandler = TestEchoHandler(), options: WorkerOptions = WorkerOptions(returnAggregateStream: true),
    environment: [String: String] = [:], server: ServerConfiguration = ServerConfiguration(),
    limits: (inout ServerLimits) -> Void = { _ in }, clock: TestClock = TestClock(), ready: Bool = true,
    _ body: @escaping @Sendable (any TestClientProtocol, EndpointServer) async throws -> Void
) async throws {
    let configuration = try WorkerConfiguration.fromEnvironment(environment)
    var server = server
    try EndpointServerSettings.readPolicies(EnvironmentReader(environment), into: &server)
    limits(&server.limits)
    let metrics = PrometheusMetrics()
    var handler: any RawJobHandler = handler
    if let openAI = try OpenAIConfiguration.read(EnvironmentReader(environment)) {
        handler = OpenAIPassthroughHandler(inner: handler, upstream: openAI, client: serverTestHTTPClient)
    }
    let context = WorkerContext(
        handler: handler, options: options, configuration: configuration, logger: Logger(label: "test"),
        httpClient: serverTestHTTPClient, metrics: WorkerMetrics(factory: metrics.factory))
    let endpoint = try EndpointServer(context: context, configuration: server, metrics: metrics, now: { clock.now })
    if ready { context.health.set(.ready) }
    let app = Application(router: endpoint.makeRouter())
    let janitor = Task { await endpoint.localStore.runJanitor() }
    defer { janitor.cancel() }
    try await app.test(.router) { client in
        try await withTimeout { try await body(client, endpoint) }
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
        let final = Mutex<JSONValue?>(nil)
        try await waitUntil("job \(id) to finish") {
            let (_, body, _) = try await call(.get, "\(prefix)/status/\(id)")
            guard let status = body?["status"]?.stringValue, ["COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT"].contains(status)
            else { return false }
            final.withLock { $0 = body }
            return true
        }
        return final.withLock { $0! }
    }

    func waitForStatus(_ id: String, _ status: String) async throws {
        try await waitUntil("job \(id) to be \(status)") {
            try await call(.get, "/status/\(id)").body?["status"]?.stringValue == status
        }
    }
}

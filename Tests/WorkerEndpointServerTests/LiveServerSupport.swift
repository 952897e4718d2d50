import Foundation
import Hummingbird
import Logging
import NIOCore
import TestSupport
import WorkerJSON
import WorkerRuntimeTesting

@testable import WorkerEndpointServer
@testable import WorkerRuntime

/// Runs the endpoint API for `handler` on a real socket (127.0.0.1, a free port) with the
/// connection handling of `--local` (`EndpointServer.httpServer()`: 100-continue, keep-alive,
/// refusals before the body), while `body` runs with the port. For what only raw bytes show:
/// Host headers, HTTP/1.0, interim responses, connections closed.
func withLiveServer(
    _ handler: some RawJobHandler = TestEchoHandler(), environment: [String: String] = [:],
    server: ServerConfiguration = ServerConfiguration(),
    _ body: @escaping @Sendable (_ port: Int) async throws -> Void
) async throws {
    let configuration = try WorkerConfiguration.fromEnvironment(environment)
    var server = server
    try EndpointServerSettings.readPolicies(EnvironmentReader(environment), into: &server)
    let metrics = PrometheusMetrics()
    var logger = Logger(label: "live-server-test")
    logger.logLevel = .error
    let context = WorkerContext(
        handler: handler, options: WorkerOptions(), configuration: configuration, logger: logger,
        httpClient: serverTestHTTPClient, metrics: WorkerMetrics(factory: metrics.factory))
    let endpoint = try EndpointServer(context: context, configuration: server, metrics: metrics)
    context.health.set(.ready)
    let (ports, found) = AsyncStream<Int>.makeStream()
    let app = Application(
        router: endpoint.makeRouter(), server: endpoint.httpServer(),
        configuration: .init(address: .hostname("127.0.0.1", port: 0)),
        onServerRunning: { channel in
            found.yield(channel.localAddress?.port ?? 0)
            found.finish()
        }, logger: logger)
    let janitor = Task { await endpoint.localStore.runJanitor() }
    defer { janitor.cancel() }
    try await whileServing(app) {
        let port = try await withTimeout(.seconds(10), "the server to start") {
            for await port in ports { return port }
            return 0
        }
        guard port > 0 else { throw TimeoutError(what: "the live server to start (it stopped)", timeout: .seconds(10)) }
        try await withTimeout { try await body(port) }
    }
}

/// Runs blocking socket work on a thread of its own: the in-process server's routes need the
/// cooperative pool, which a test blocked in `poll` would hold.
func blocking<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread { continuation.resume(with: Result<T, any Error>(catching: { try work() })) }.start()
    }
}

/// A request as a browser or an HTTP client writes it; `Content-Length` is added for a body.
func rawRequest(
    _ method: String, _ target: String, host: String?, headers: [(String, String)] = [], body: String? = nil,
    version: String = "HTTP/1.1"
) -> String {
    var text = "\(method) \(target) \(version)\r\n"
    if let host { text += "Host: \(host)\r\n" }
    for (name, value) in headers { text += "\(name): \(value)\r\n" }
    if let body { text += "Content-Length: \(body.utf8.count)\r\n" }
    return text + "\r\n" + (body ?? "")
}

/// Sends `request` on a connection of its own and reads one whole response.
func exchange(_ port: Int, _ request: String, timeout: Duration = .seconds(10)) async throws -> RawResponse {
    try await blocking {
        let connection = try RawConnection(port: port)
        connection.write(request)
        let (text, closed) = connection.read(timeout: timeout) { RawResponse($0).isComplete }
        return RawResponse(text, closed: closed)
    }
}

/// One response as it came off the socket: interim responses (`100 Continue`) apart, then the
/// final one's head and body.
struct RawResponse: Sendable, CustomStringConvertible {
    /// The status lines of interim responses before the final one.
    let interim: [String]
    let head: String
    let body: String
    /// The final head has arrived, and as much body as its `Content-Length` says.
    let isComplete: Bool
    /// The server closed the connection (while it was read).
    let closed: Bool

    init(_ text: String, closed: Bool = false) {
        var rest = Substring(text)
        var interim: [String] = []
        while rest.hasPrefix("HTTP/1.1 1") || rest.hasPrefix("HTTP/1.0 1"), let end = rest.range(of: "\r\n\r\n") {
            interim.append(String(rest[..<end.lowerBound]))
            rest = rest[end.upperBound...]
        }
        self.interim = interim
        self.closed = closed
        guard let end = rest.range(of: "\r\n\r\n") else {
            head = String(rest)
            body = ""
            isComplete = false
            return
        }
        head = String(rest[..<end.lowerBound])
        body = String(rest[end.upperBound...])
        let length = Self.header("content-length", in: head).flatMap { Int($0) } ?? 0
        isComplete = body.utf8.count >= length
    }

    var statusLine: String { head.components(separatedBy: "\r\n").first ?? "" }
    var status: Int { statusLine.split(separator: " ").dropFirst().first.flatMap { Int($0) } ?? 0 }
    var json: JSONValue? { try? JSONValue.parse(Array(body.utf8)) }
    func header(_ name: String) -> String? { Self.header(name, in: head) }
    var description: String { String((interim + [head]).joined(separator: " | ").prefix(300)) + " " + String(body.prefix(300)) }

    private static func header(_ name: String, in head: String) -> String? {
        for line in head.components(separatedBy: "\r\n").dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            if line[..<colon].lowercased() == name.lowercased() {
                return line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            }
        }
        return nil
    }
}

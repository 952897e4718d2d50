import Hummingbird
import Logging
import NIOCore
import Synchronization
import WorkerRuntime

/// A request context that knows the client's address, to tell connections apart.
struct PeerContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    let remotePort: Int?
    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remotePort = source.channel.remoteAddress?.port
    }
}

/// A loopback server with the behaviours the HTTP client tests need.
enum TestHTTPServer {
    /// When /stream wrote each chunk, by the `id` query parameter.
    static let streamWrites = Mutex<[String: [ContinuousClock.Instant]]>([:])

    static func run<T: Sendable>(_ body: @Sendable (_ base: String) async throws -> T) async throws -> T {
        let router = Router(context: PeerContext.self)
        router.get("/hello") { _, _ in
            Response(status: .ok, headers: [.init("X-Test")!: "yes"], body: .init(byteBuffer: ByteBuffer(string: "hi")))
        }
        router.post("/echo") { request, context in
            var request = request
            let body = try await request.collectBody(upTo: 64 << 20)
            var headers: [String: JSONValue] = [:]
            for field in request.headers { headers[field.name.canonicalName] = .string(field.value) }
            let reply: JSONValue = [
                "method": .string(request.method.rawValue), "body": .string(String(buffer: body)),
                "headers": .object(headers), "port": .integer(Int64(context.remotePort ?? 0)),
            ]
            return Response(status: .ok, body: .init(byteBuffer: ByteBuffer(bytes: try reply.serialized())))
        }
        router.get("/port") { _, context in
            "\(context.remotePort ?? 0)"
        }
        router.get("/status/:code") { _, context in
            let code = Int(context.parameters.get("code") ?? "") ?? 500
            return Response(status: .init(code: code), body: .init(byteBuffer: ByteBuffer(string: "status \(code)")))
        }
        router.get("/slow") { _, _ in
            try await Task.sleep(for: .seconds(5))
            return "late"
        }
        router.get("/stream") { request, _ in
            let id = request.uri.queryParameters.get("id") ?? ""
            return Response(
                status: .ok, headers: [.contentType: "text/event-stream"],
                body: .init { writer in
                    for index in 0..<3 {
                        try await writer.write(ByteBuffer(string: "data: \(index)\n\n"))
                        streamWrites.withLock { $0[id, default: []].append(.now) }
                        try await Task.sleep(for: .milliseconds(400))
                    }
                    try await writer.finish(nil)
                })
        }
        return try await runOnLoopback(router, body)
    }
}

/// Serves `router` on 127.0.0.1 with a free port for the duration of `body`.
func runOnLoopback<Context: RequestContext, T: Sendable>(
    _ router: Router<Context>, _ body: @Sendable (_ base: String) async throws -> T
) async throws -> T where Context.Source == ApplicationRequestContextSource {
    let port = Mutex<Int?>(nil)
    var logger = Logger(label: "test-server")
    logger.logLevel = .critical
    let app = Application(
        router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
        onServerRunning: { channel in port.withLock { $0 = channel.localAddress?.port } }, logger: logger)
    return try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask {
            try await app.run()
            return nil
        }
        while port.withLock({ $0 }) == nil { try await Task.sleep(for: .milliseconds(2)) }
        let result = try await body("http://127.0.0.1:\(port.withLock { $0 }!)")
        group.cancelAll()
        return result
    }
}

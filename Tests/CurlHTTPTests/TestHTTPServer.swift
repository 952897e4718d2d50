import Hummingbird
import Logging
import NIOCore
import Synchronization
import TestSupport
import WorkerJSON

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
    /// Stream ids whose client went away before the last chunk (a write failed).
    static let streamsAbandoned = Mutex<Set<String>>([])

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
            let count = request.uri.queryParameters.get("count").flatMap { Int($0) } ?? 3
            let gap = Duration.milliseconds(request.uri.queryParameters.get("gap").flatMap { Int($0) } ?? 400)
            return Response(
                status: .ok, headers: [.contentType: "text/event-stream"],
                body: .init { writer in
                    do {
                        for index in 0..<count {
                            try await writer.write(ByteBuffer(string: "data: \(index)\n\n"))
                            streamWrites.withLock { $0[id, default: []].append(.now) }
                            try await Task.sleep(for: gap)
                        }
                        try await writer.finish(nil)
                    } catch {
                        streamsAbandoned.withLock { _ = $0.insert(id) }
                        throw error
                    }
                })
        }
        return try await runOnLoopback(router, body)
    }
}

import NIOCore
import NIOHTTP1
import NIOPosix

/// Serves a MockPlatform over HTTP/1.1 from the event loop itself.
enum MockPlatformServer {
    static func bind(platform: MockPlatform, host: String, port: Int) async throws -> any Channel {
        try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(MockPlatformHandler(platform: platform))
                }
            }
            .bind(host: host, port: port).get()
    }
}

/// One connection: collects a request, answers it (holding an empty job-take or job-stop open
/// for the platform's long-poll time), one request at a time.
final class MockPlatformHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let platform: MockPlatform
    private var head: HTTPRequestHead?
    private var body = ByteBuffer()

    init(platform: MockPlatform) { self.platform = platform }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            body.clear()
        case .body(var chunk):
            body.writeBuffer(&chunk)
        case .end:
            guard let head else { return }
            self.head = nil
            let (path, query) = Self.split(head.uri)
            let request = MockPlatform.Request(
                method: head.method.rawValue, path: path, query: query,
                headers: head.headers.map { ($0.name, $0.value) }, body: Array(body.readableBytesView),
                at: .now, epochNanos: MockPlatform.epochNanosNow())
            respond(to: request, keepAlive: head.isKeepAlive, context: context, deadline: .now() + .nanoseconds(Int64(platform.longPoll.nanosecondsValue)), first: true)
        }
    }

    private func respond(
        to request: MockPlatform.Request, keepAlive: Bool, context: ChannelHandlerContext, deadline: NIODeadline, first: Bool
    ) {
        if let answer = platform.answer(request, firstAttempt: first) {
            if let delay = answer.delay {
                let loop = context.eventLoop.assumeIsolated()
                loop.scheduleTask(in: .nanoseconds(delay.nanosecondsValue)) { self.write(answer, keepAlive: keepAlive, context: context) }
                return
            }
            if answer.status == 204 && request.operation == "job-stop" && first {
                // An empty stop channel is a long poll too.
                let loop = context.eventLoop.assumeIsolated()
                loop.scheduleTask(deadline: deadline) { self.write(answer, keepAlive: keepAlive, context: context) }
                return
            }
            write(answer, keepAlive: keepAlive, context: context)
        } else if NIODeadline.now() >= deadline {
            write(MockPlatform.Answer(status: 204), keepAlive: keepAlive, context: context)
        } else {
            let loop = context.eventLoop.assumeIsolated()
            loop.scheduleTask(in: .milliseconds(2)) {
                self.respond(to: request, keepAlive: keepAlive, context: context, deadline: deadline, first: false)
            }
        }
    }

    private func write(_ answer: MockPlatform.Answer, keepAlive: Bool, context: ChannelHandlerContext) {
        guard context.channel.isActive else { return }
        var headers = HTTPHeaders()
        if answer.status != 204 {
            headers.add(name: "Content-Type", value: answer.contentType)
            headers.add(name: "Content-Length", value: "\(answer.body.count)")
        }
        if !keepAlive { headers.add(name: "Connection", value: "close") }
        for (name, value) in answer.headers { headers.add(name: name, value: value) }
        let head = HTTPResponseHead(
            version: .http1_1, status: HTTPResponseStatus(statusCode: answer.status), headers: headers)
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        if answer.status != 204 {
            context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: answer.body)))), promise: nil)
        }
        let done = context.writeAndFlushPromise()
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: done)
        if !keepAlive {
            done.futureResult.hop(to: context.eventLoop).assumeIsolated().whenComplete { _ in context.close(promise: nil) }
        }
    }

    static func split(_ uri: String) -> (path: String, query: String) {
        guard let mark = uri.firstIndex(of: "?") else { return (uri, "") }
        return (String(uri[..<mark]), String(uri[uri.index(after: mark)...]))
    }
}

extension ChannelHandlerContext {
    fileprivate func writeAndFlushPromise() -> EventLoopPromise<Void> { eventLoop.makePromise() }
}

extension Duration {
    fileprivate var nanosecondsValue: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }
}

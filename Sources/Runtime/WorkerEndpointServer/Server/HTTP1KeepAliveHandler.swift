import NIOCore
import NIOHTTP1
import NIOHTTPTypesHTTP1

/// Ends connections whose client asked for it, which Hummingbird leaves undone: an HTTP/1.0
/// request without `Connection: keep-alive` (or any request with `Connection: close`) is
/// answered with `Connection: close`, and the connection is closed once the response is written
/// and the request read, instead of being held until the idle timeout. An HTTP/1.0 client also
/// gets an HTTP/1.0 response (no chunked encoding, which it cannot read: a body of unknown length
/// then ends with the connection), no `100 Continue` (it knows no interim responses), and a
/// keep-alive connection only when the response's length is known.
///
/// It sits between the HTTP/1 decoder and the codec to HTTP types, the last place that sees the
/// request's version: `install(in:)` puts it there from a handler the server adds.
final class HTTP1KeepAliveHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    private struct Exchange {
        let isHTTP10: Bool
        let keepAlive: Bool
    }

    /// Requests read whose responses have not ended, oldest first (more than one only when a
    /// client pipelines).
    private var exchanges: [Exchange] = []
    /// The latest request's end has been read.
    private var requestComplete = true
    /// The response being written ends the connection.
    private var closeAfterResponse = false
    /// The connection's last response is written; it closes when the request's end arrives.
    private var closeWhenRequestEnds = false

    /// Adds a handler just before the HTTP-types codec of `pipeline`; nothing when there is none.
    static func install(in pipeline: ChannelPipeline.SynchronousOperations) {
        guard let codec = try? pipeline.handler(type: HTTP1ToHTTPServerCodec.self) else { return }
        try? pipeline.addHandler(HTTP1KeepAliveHandler(), position: .before(codec))
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            requestComplete = false
            exchanges.append(Exchange(isHTTP10: head.version.major == 1 && head.version.minor == 0, keepAlive: head.isKeepAlive))
        case .body:
            break
        case .end:
            requestComplete = true
        }
        context.fireChannelRead(data)
        if requestComplete, closeWhenRequestEnds { context.close(promise: nil) }
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .head(let response) where response.status.code < 200:
            // An interim response (100 Continue) belongs to the request whose head came last.
            if exchanges.last?.isHTTP10 == true {
                promise?.succeed(())
                return
            }
            context.write(data, promise: promise)
        case .head(var response):
            guard let exchange = exchanges.first else { return context.write(data, promise: promise) }
            var keepAlive = exchange.keepAlive && response.isKeepAlive
            if exchange.isHTTP10 {
                response.version = .http1_0
                // Without a length, the end of an HTTP/1.0 body is the end of the connection.
                let bodiless = response.status == .noContent || response.status == .notModified
                keepAlive = keepAlive && (bodiless || response.headers.contains(name: "content-length"))
                if keepAlive { response.headers.replaceOrAdd(name: "connection", value: "keep-alive") }
            }
            if !keepAlive { response.headers.replaceOrAdd(name: "connection", value: "close") }
            closeAfterResponse = !keepAlive
            context.write(wrapOutboundOut(.head(response)), promise: promise)
        case .body:
            context.write(data, promise: promise)
        case .end:
            if !exchanges.isEmpty { exchanges.removeFirst() }
            guard closeAfterResponse else { return context.write(data, promise: promise) }
            closeAfterResponse = false
            let written = promise ?? context.eventLoop.makePromise()
            context.writeAndFlush(data, promise: written)
            written.futureResult.assumeIsolated().whenComplete { _ in
                if self.requestComplete {
                    context.close(promise: nil)
                } else {
                    self.closeWhenRequestEnds = true
                }
            }
        }
    }
}

import HTTPTypes
import HummingbirdCore
import NIOCore
import NIOHTTPTypes

/// Two things about a request's body that Hummingbird leaves to the application, handled at the
/// connection, right after HTTP decoding:
///
/// - `Expect: 100-continue` is answered `100 Continue` when the declared length is within the
///   path's limit (`bodyLimit`) and the request is not refused from its head alone
///   (`refusesFromHead`: Host, Origin, body type, API key); otherwise the route answers (413, 421,
///   403, 415, 401) at once and the client never sends the body. (curl and libcurl otherwise wait
///   a second before every body over 1 MB.)
/// - After a 413, or any refusal (4xx, 5xx) answered before the request's body has all arrived,
///   the connection closes (`Connection: close`), once the rest of the body has been read and
///   discarded, up to `drainBytes` or `drainTime`, whichever comes first. A client that writes its
///   whole body before reading (Python's `urllib`, `http.client`) then gets the refusal instead
///   of blocking on a full TCP window while the server waits for it, both for ever; and a refused
///   client cannot make the server read a body of any size.
///
/// It also puts `HTTP1KeepAliveHandler` in front of the HTTP-types codec when added.
final class RequestFlowHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    private enum State {
        case normal
        /// A refusal (a 413, or an error answered before the body ended) is being written.
        case refusing
        /// The refusal is written; the body's rest is read and dropped until the budget runs out.
        case draining(bytesLeft: Int)
    }

    private let bodyLimit: @Sendable (_ path: String) -> Int
    private let refusesFromHead: @Sendable (HTTPRequest) -> Bool
    private let drainBytes: Int
    private let drainTime: TimeAmount
    private var state = State.normal
    /// The current request's end has been read.
    private var requestComplete = true

    init(
        bodyLimit: @escaping @Sendable (_ path: String) -> Int, refusesFromHead: @escaping @Sendable (HTTPRequest) -> Bool = { _ in false },
        drainBytes: Int = 64 << 20, drainTime: TimeAmount = .seconds(5)
    ) {
        self.bodyLimit = bodyLimit
        self.refusesFromHead = refusesFromHead
        self.drainBytes = drainBytes
        self.drainTime = drainTime
    }

    func handlerAdded(context: ChannelHandlerContext) {
        HTTP1KeepAliveHandler.install(in: context.pipeline.syncOperations)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        switch part {
        case .head(let head):
            requestComplete = false
            if head.headerFields.firstValue(.expect)?.lowercased() == "100-continue",
                (head.headerFields.firstValue(.contentLength).flatMap(Int.init) ?? 0) <= bodyLimit(head.path ?? "/"),
                !refusesFromHead(head)
            {
                context.writeAndFlush(wrapOutboundOut(.head(HTTPResponse(status: .continue))), promise: nil)
            }
        case .body, .end:
            if case .end = part { requestComplete = true }
        }
        guard case .draining(let left) = state else { return context.fireChannelRead(data) }
        switch part {
        case .body(let buffer) where buffer.readableBytes < left:
            state = .draining(bytesLeft: left - buffer.readableBytes)
        default:
            // The body is over (the client now reads the refusal), or it is longer than we will read.
            context.close(promise: nil)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        // The application no longer asks for data once it has answered; draining does.
        if case .draining = state { context.read() }
        context.fireChannelReadComplete()
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .head(var response) where response.status == .contentTooLarge || (response.status.code >= 400 && !requestComplete):
            state = .refusing
            response.headerFields[.connection] = "close"
            context.write(wrapOutboundOut(.head(response)), promise: promise)
        case .end:
            guard case .refusing = state else { return context.write(data, promise: promise) }
            let written = promise ?? context.eventLoop.makePromise()
            context.writeAndFlush(data, promise: written)
            written.futureResult.assumeIsolated().whenComplete { _ in self.drain(context: context) }
        default:
            context.write(data, promise: promise)
        }
    }

    private func drain(context: ChannelHandlerContext) {
        guard !requestComplete else { return context.close(promise: nil) }
        state = .draining(bytesLeft: drainBytes)
        context.eventLoop.assumeIsolated().scheduleTask(in: drainTime) { context.close(promise: nil) }
        context.read()
    }
}

import NIOCore
import Synchronization

/// Tells a route when its client hung up. The server allows half-closed connections, so a
/// client that closes its socket shows up as the end of input, not as a closed channel: a route
/// waiting on a long job (an MCP tool call) would otherwise learn it only when it writes.
final class ClientHangUpHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny

    private var signal: HangUpSignal?

    func handlerAdded(context: ChannelHandlerContext) {
        let signal = HangUpSignal()
        self.signal = signal
        HangUpSignal.register(signal, for: context.channel)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        signal?.fire()
        HangUpSignal.unregister(context.channel)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event { signal?.fire() }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        signal?.fire()
        context.fireChannelInactive()
    }
}

/// One connection's hang-up, watched by the requests on it. Found by channel in a registry,
/// so adding and removing a watch is a lock, not a hop to the connection's event loop (a tool
/// call watches its connection on every request).
final class HangUpSignal: Sendable {
    private struct State {
        var hungUp = false
        var watchers: [UInt64: @Sendable () -> Void] = [:]
        var next: UInt64 = 0
    }

    private let state = Mutex(State())

    private static let registry = Mutex<[ObjectIdentifier: HangUpSignal]>([:])

    static func register(_ signal: HangUpSignal, for channel: any Channel) {
        _ = registry.withLock { $0.updateValue(signal, forKey: ObjectIdentifier(channel)) }
    }

    static func unregister(_ channel: any Channel) {
        _ = registry.withLock { $0.removeValue(forKey: ObjectIdentifier(channel)) }
    }

    static func of(_ channel: any Channel) -> HangUpSignal? {
        registry.withLock { $0[ObjectIdentifier(channel)] }
    }

    func fire() {
        let watchers = state.withLock { state -> [@Sendable () -> Void] in
            guard !state.hungUp else { return [] }
            state.hungUp = true
            defer { state.watchers = [:] }
            return Array(state.watchers.values)
        }
        for action in watchers { action() }
    }

    /// Adds a watch; nil when the client already hung up (the action has then run).
    func add(_ action: @escaping @Sendable () -> Void) -> UInt64? {
        let token = state.withLock { state -> UInt64? in
            guard !state.hungUp else { return nil }
            state.next += 1
            state.watchers[state.next] = action
            return state.next
        }
        if token == nil { action() }
        return token
    }

    func remove(_ token: UInt64) {
        _ = state.withLock { $0.watchers.removeValue(forKey: token) }
    }
}

/// A watch on a request's client; `cancel()` once the request is answered.
package struct ClientHangUpWatch: Sendable {
    fileprivate let signal: HangUpSignal?
    fileprivate let token: UInt64?

    package func cancel() {
        if let signal, let token { signal.remove(token) }
    }
}

extension EndpointRequestContext {
    /// Runs `action` (once) if this request's client hangs up (closes or half-closes its
    /// connection) before the watch is cancelled; at once if it already has.
    package func onClientHangUp(_ action: @escaping @Sendable () -> Void) -> ClientHangUpWatch {
        guard let signal = HangUpSignal.of(channel) else { return ClientHangUpWatch(signal: nil, token: nil) }
        return ClientHangUpWatch(signal: signal, token: signal.add(action))
    }
}

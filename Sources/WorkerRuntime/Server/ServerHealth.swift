import Synchronization

/// What `/ping` reports: 204 while the handler's start-up runs, 200 once ready, 503 when the
/// start-up failed or the handler reports itself unhealthy.
final class ServerHealth: Sendable {
    enum State: Sendable, Equatable {
        case initializing
        case ready
        case failed(String)
    }

    private let state = Mutex(State.initializing)
    private let handlerHealthy: @Sendable () -> Bool

    init(handlerHealthy: @escaping @Sendable () -> Bool) { self.handlerHealthy = handlerHealthy }

    func set(_ new: State) { state.withLock { $0 = new } }

    var current: State {
        let state = state.withLock { $0 }
        if state == .ready, !handlerHealthy() { return .failed("the handler reports itself unhealthy") }
        return state
    }
}

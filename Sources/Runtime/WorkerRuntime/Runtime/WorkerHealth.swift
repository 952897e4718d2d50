import Synchronization

/// Whether the worker can take work, as health checks report it: initializing while the
/// handler's start-up runs, then ready, or failed when start-up failed or the handler reports
/// itself unhealthy.
package final class WorkerHealth: Sendable {
    package enum State: Sendable, Equatable {
        case initializing
        case ready
        case failed(String)
    }

    private let state = Mutex(State.initializing)
    private let handlerHealthy: @Sendable () -> Bool

    package init(handlerHealthy: @escaping @Sendable () -> Bool) { self.handlerHealthy = handlerHealthy }

    package func set(_ new: State) { state.withLock { $0 = new } }

    package var current: State {
        let state = state.withLock { $0 }
        if state == .ready, !handlerHealthy() { return .failed("the handler reports itself unhealthy") }
        return state
    }
}

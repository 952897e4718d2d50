import Synchronization
import WorkerJSON

/// The calls running, by client and JSON-RPC id, so that `notifications/cancelled` stops the
/// right ones. Ids are chosen by clients and clash (some send every request with id 1), so a
/// cancel reaches only the calls of the client that sent it, never another's.
final class MCPInFlight: Sendable {
    struct Key: Hashable, Sendable {
        let client: String
        let id: JSONValue
    }

    private struct State {
        var calls: [Key: [UInt64: @Sendable () -> Void]] = [:]
        var next: UInt64 = 0
    }

    private let state = Mutex(State())

    /// Registers a running call; `cancel` stops it. Returns the token to `finish` with.
    func start(_ key: Key, cancel: @escaping @Sendable () -> Void) -> UInt64 {
        state.withLock { state in
            state.next += 1
            state.calls[key, default: [:]][state.next] = cancel
            return state.next
        }
    }

    func finish(_ key: Key, token: UInt64) {
        state.withLock { state in
            state.calls[key]?[token] = nil
            if state.calls[key]?.isEmpty == true { state.calls[key] = nil }
        }
    }

    /// Cancels every running call of `key`; false when there was none (finished, or on another replica).
    @discardableResult
    func cancel(_ key: Key) -> Bool {
        let cancels = state.withLock { state in state.calls.removeValue(forKey: key).map { Array($0.values) } ?? [] }
        for cancel in cancels { cancel() }
        return !cancels.isEmpty
    }
}

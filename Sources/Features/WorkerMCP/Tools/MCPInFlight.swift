import Synchronization
import WorkerJSON

/// The calls running, by client and JSON-RPC id, so that `notifications/cancelled` stops the
/// right ones. Ids are chosen by clients and clash (some send every request with id 1), so a
/// cancel reaches only the calls of the client that sent it, never another's.
final class MCPInFlight: Sendable {
    struct Key: Hashable, Sendable {
        let client: Client
        let id: JSONValue
    }

    /// Whose call: the session its client echoes, its connection, or the one stdio client.
    enum Client: Hashable, Sendable {
        case session(String)
        case connection(ObjectIdentifier)
        case stdio
    }

    /// By token, not by key: a call's start and finish hash one integer, where a map by key
    /// hashed the key's text four times and made a map per call. Only a cancel looks for a key,
    /// among the calls running.
    private struct State {
        var calls: [UInt64: (key: Key, cancel: @Sendable () -> Void)] = [:]
        var next: UInt64 = 0
    }

    private let state = Mutex(State())

    /// Registers a running call; `cancel` stops it. Returns the token to `finish` with.
    func start(_ key: Key, cancel: @escaping @Sendable () -> Void) -> UInt64 {
        state.withLock { state in
            state.next += 1
            state.calls[state.next] = (key, cancel)
            return state.next
        }
    }

    /// The call of `token` ended.
    func finish(token: UInt64) {
        state.withLock { state in _ = state.calls.removeValue(forKey: token) }
    }

    /// Cancels every running call of `key`; false when there was none (finished, or on another replica).
    @discardableResult
    func cancel(_ key: Key) -> Bool {
        let cancels = state.withLock { state in
            let tokens = state.calls.compactMap { $0.value.key == key ? $0.key : nil }
            return tokens.compactMap { state.calls.removeValue(forKey: $0)?.cancel }
        }
        for cancel in cancels { cancel() }
        return !cancels.isEmpty
    }
}

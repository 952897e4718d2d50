import WorkerJSON
import Synchronization

/// A wake-up for one waiter: `signal()` before `wait` is remembered, so no wake-up is lost.
package final class AsyncSignal: Sendable {
    package init() {}

    private struct State {
        var pending = false
        var waiter: CheckedContinuation<Void, Never>?
    }

    private let state = Mutex(State())

    package func signal() {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            if let waiter = state.waiter {
                state.waiter = nil
                return waiter
            }
            state.pending = true
            return nil
        }
        waiter?.resume()
    }

    /// Returns on a signal, after `timeout` (nil: no timeout), or when the task is cancelled.
    package func wait(timeout: Duration?) async {
        if state.withLock({ state in defer { state.pending = false }; return state.pending }) { return }
        let timer = timeout.map { timeout in
            Task { [self] in
                try? await Task.sleep(for: timeout)
                signal()
            }
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let resumeNow = state.withLock { state -> Bool in
                    if state.pending || Task.isCancelled {
                        state.pending = false
                        return true
                    }
                    state.waiter = continuation
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            signal()
        }
        timer?.cancel()
        // A timer that fired after the real wake-up leaves a stale signal: harmless, the caller re-checks.
    }
}

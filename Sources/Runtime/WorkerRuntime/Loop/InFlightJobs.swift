import WorkerJSON
import Synchronization

/// The jobs a worker is running, in process memory only (never a shared file: runpod-python#432).
/// Read by the heartbeat thread, the stop channel and the poller.
final class InFlightJobs: Sendable {
    private struct State {
        var order: [String] = []
        var tasks: [String: Task<Void, Never>] = [:]
        var stopped: Set<String> = []
        var drainWaiters: [CheckedContinuation<Void, Never>] = []
    }

    private let state = Mutex(State())
    /// Signalled whenever a slot frees, so the poller takes the next job at once.
    let slotFreed = AsyncSignal()

    var count: Int { state.withLock { $0.order.count } }
    var ids: [String] { state.withLock { $0.order } }

    func contains(_ id: String) -> Bool { state.withLock { $0.tasks[id] != nil } }

    /// Starts `body` for the job unless a job with that id is already running.
    @discardableResult
    func start(id: String, _ body: @escaping @Sendable () async -> Void) -> Bool {
        state.withLock { state in
            guard state.tasks[id] == nil else { return false }
            state.order.append(id)
            state.tasks[id] = Task { [self] in
                await body()
                finish(id)
            }
            return true
        }
    }

    private func finish(_ id: String) {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.order.removeAll { $0 == id }
            state.tasks[id] = nil
            state.stopped.remove(id)
            guard state.order.isEmpty else { return [] }
            defer { state.drainWaiters.removeAll() }
            return state.drainWaiters
        }
        slotFreed.signal()
        for waiter in waiters { waiter.resume() }
    }

    /// Cancels that job only. Returns false if it is not running here.
    func stop(_ id: String) -> Bool {
        let task = state.withLock { state -> Task<Void, Never>? in
            guard let task = state.tasks[id] else { return nil }
            state.stopped.insert(id)
            return task
        }
        task?.cancel()
        return task != nil
    }

    func wasStopped(_ id: String) -> Bool { state.withLock { $0.stopped.contains(id) } }

    func cancelAll() {
        let tasks = state.withLock { Array($0.tasks.values) }
        for task in tasks { task.cancel() }
    }

    /// Returns once no job is running.
    func drain() async {
        await withCheckedContinuation { continuation in
            let done = state.withLock { state -> Bool in
                if state.order.isEmpty { return true }
                state.drainWaiters.append(continuation)
                return false
            }
            if done { continuation.resume() }
        }
    }
}

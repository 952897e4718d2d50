import Synchronization

/// A bounded pool of connections for the clients of this package (Redis, PostgreSQL): lends idle
/// connections, tells a caller to open one while there is room, and queues callers in order when
/// there is none, each for at most its wait limit. The bookkeeping is `PoolState`; this class
/// holds it under a mutex and hands connections between tasks. Opening and closing connections
/// is the client's (they block, on its own threads).
package final class ConnectionPool<Connection: Sendable>: Sendable {
    package enum Lease: Sendable {
        /// An open connection: use it, then `release` it.
        case reused(Connection)
        /// Room for a new connection, already counted: open it, then `release` it, or call
        /// `openFailed()` if opening failed.
        case open
    }

    /// Why no connection was lent.
    package enum Failure: Error, Sendable {
        /// Every connection stayed busy for the wait limit.
        case timedOut
        case shutDown
    }

    private struct Box: ~Copyable {
        var state: PoolState<Connection>
        /// A waiter's continuation, or its outcome when it came before the continuation was stored.
        var waiting: [Int: Slot] = [:]

        /// Delivers to a waiter: the continuation to resume (outside the lock), if it is stored yet.
        mutating func deliver(_ waiter: Int, _ outcome: Result<Lease, any Error>) -> CheckedContinuation<Lease, any Error>? {
            if case .waiting(let continuation) = waiting.removeValue(forKey: waiter) { return continuation }
            waiting[waiter] = .outcome(outcome)
            return nil
        }
    }

    private enum Slot {
        case waiting(CheckedContinuation<Lease, any Error>)
        case outcome(Result<Lease, any Error>)
    }

    private let box: Mutex<Box>
    private let nextID = Atomic<Int>(1)

    package init(capacity: Int) {
        box = Mutex(Box(state: PoolState(capacity: capacity)))
    }

    /// Connections open now (idle, lent out or being opened).
    package var openCount: Int { box.withLock { $0.state.open } }

    /// A connection, or room to open one; waits in line for at most `timeout` when the pool is
    /// full. Throws `Failure` or `CancellationError`.
    package func lease(waitingAtMost timeout: Duration) async throws -> Lease {
        let id = nextID.add(1, ordering: .relaxed).oldValue
        switch box.withLock({ $0.state.lease(waiter: id) }) {
        case .use(let connection): return .reused(connection)
        case .open: return .open
        case .shutDown: throw Failure.shutDown
        case .wait: return try await wait(id, timeout: timeout)
        }
    }

    /// Takes a lent connection back; returns it when it is to be closed (it broke, or the pool is
    /// shutting down), else nil.
    package func release(_ connection: Connection, reusable: Bool) -> Connection? {
        settle(box.withLock { $0.state.release(connection, reusable: reusable) }, connection)
    }

    /// Opening a connection failed: its place goes to the next in line, if any.
    package func openFailed() {
        _ = settle(box.withLock { $0.state.openFailed() }, nil)
    }

    /// Takes the idle connections out, to be closed (the server dropped them all, as at a restart).
    package func discardIdle() -> [Connection] {
        box.withLock { $0.state.discardIdle() }
    }

    /// No more leases: fails those waiting and returns the idle connections to close; lent ones
    /// come back through `release`, which then says to close them.
    package func shutdown() -> [Connection] {
        let (idle, waiters) = box.withLock { box in
            let (idle, waiters) = box.state.shutDown()
            return (idle, waiters.compactMap { box.deliver($0, .failure(Failure.shutDown)) })
        }
        for waiter in waiters { waiter.resume(throwing: Failure.shutDown) }
        return idle
    }

    private func settle(_ action: PoolState<Connection>.ReleaseAction, _ connection: Connection?) -> Connection? {
        switch action {
        case .keep:
            return nil
        case .handOver(let waiter, let connection):
            resume(waiter, .reused(connection))
            return nil
        case .openFor(let waiter):
            resume(waiter, .open)
            return connection
        case .close:
            return connection
        }
    }

    private func resume(_ waiter: Int, _ lease: Lease) {
        box.withLock { $0.deliver(waiter, .success(lease)) }?.resume(returning: lease)
    }

    private func wait(_ id: Int, timeout: Duration) async throws -> Lease {
        // The timer fails the wait unless a connection came first.
        let timer = Task { [weak self] in
            try await Task.sleep(for: timeout)
            self?.abandon(id, Failure.timedOut)
        }
        defer { timer.cancel() }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                let early = box.withLock { box -> Result<Lease, any Error>? in
                    // Served or given up before the continuation existed.
                    if case .outcome(let outcome) = box.waiting.removeValue(forKey: id) { return outcome }
                    box.waiting[id] = .waiting(continuation)
                    return nil
                }
                if let early { continuation.resume(with: early) }
            }
        } onCancel: {
            abandon(id, CancellationError())
        }
    }

    private func abandon(_ id: Int, _ error: any Error) {
        let continuation = box.withLock { box in
            box.state.abandon(waiter: id) ? box.deliver(id, .failure(error)) : nil
        }
        continuation?.resume(throwing: error)
    }
}

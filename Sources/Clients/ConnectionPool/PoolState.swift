/// The connection pool's bookkeeping as a pure state machine: which connection a caller gets,
/// when to open one, who waits and who is handed what. No I/O and no locks: `ConnectionPool`
/// holds it under a mutex and carries out the actions it returns.
package struct PoolState<Connection> {
    package enum LeaseAction {
        /// An idle connection: use it.
        case use(Connection)
        /// Below capacity: the caller opens a new connection (already counted).
        case open
        /// At capacity: the caller waits (as `waiter`) for a release.
        case wait
        case shutDown
    }

    package enum ReleaseAction {
        /// Kept idle for the next caller.
        case keep
        /// Handed to the oldest waiter.
        case handOver(waiter: Int, Connection)
        /// The connection is gone (or being given up); the oldest waiter opens a new one instead.
        case openFor(waiter: Int)
        /// Close the connection (the pool is shutting down, or it broke); nobody waits.
        case close
    }

    package let capacity: Int
    private(set) package var idle: [Connection] = []
    /// Connections in existence or being opened: idle, lent out, opening.
    private(set) package var open = 0
    private(set) package var waiters: [Int] = []
    private(set) package var isShutDown = false

    package init(capacity: Int) {
        precondition(capacity > 0, "a pool needs room for one connection")
        self.capacity = capacity
    }

    /// A caller (`waiter` names it should it have to wait) wants a connection.
    package mutating func lease(waiter: Int) -> LeaseAction {
        if isShutDown { return .shutDown }
        if let connection = idle.popLast() { return .use(connection) }
        if open < capacity {
            open += 1
            return .open
        }
        waiters.append(waiter)
        return .wait
    }

    /// A lent connection comes back; `reusable` is false when it broke.
    package mutating func release(_ connection: Connection, reusable: Bool) -> ReleaseAction {
        guard reusable, !isShutDown else { return lost() }
        if !waiters.isEmpty { return .handOver(waiter: waiters.removeFirst(), connection) }
        idle.append(connection)
        return .keep
    }

    /// Opening a connection failed: its place is free again.
    package mutating func openFailed() -> ReleaseAction {
        lost()
    }

    private mutating func lost() -> ReleaseAction {
        open -= 1
        if !isShutDown, !waiters.isEmpty {
            open += 1
            return .openFor(waiter: waiters.removeFirst())
        }
        return .close
    }

    /// A lent connection was found dropped by the server: the idle ones, opened before the drop,
    /// are most likely dropped too (a restart drops them all). Returns them to close.
    package mutating func discardIdle() -> [Connection] {
        defer {
            open -= idle.count
            idle = []
        }
        return idle
    }

    /// A waiter gave up (timeout, cancellation). False when it had already been served.
    package mutating func abandon(waiter: Int) -> Bool {
        guard let index = waiters.firstIndex(of: waiter) else { return false }
        waiters.remove(at: index)
        return true
    }

    /// No more leases: returns the idle connections to close and the waiters to fail. Lent
    /// connections are closed as they come back.
    package mutating func shutDown() -> (idle: [Connection], waiters: [Int]) {
        isShutDown = true
        defer {
            open -= idle.count
            idle = []
            waiters = []
        }
        return (idle, waiters)
    }
}

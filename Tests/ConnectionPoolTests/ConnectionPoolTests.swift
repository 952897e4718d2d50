import ConnectionPool
import Synchronization
import Testing
import TestSupport

private final class Connection: Sendable {
    let number: Int
    init(_ number: Int) { self.number = number }
}

private final class Counters: Sendable {
    let made = Atomic<Int>(0)
    let busy = Atomic<Int>(0)
    let peak = Atomic<Int>(0)
}

@Suite("The connection pool between tasks", .defaultPass)
struct ConnectionPoolTests {
    @Test("Room to open up to capacity; then a release hands the connection to the caller waiting longest")
    func handOver() async throws {
        let pool = ConnectionPool<Connection>(capacity: 1)
        guard case .open = try await pool.lease(waitingAtMost: .seconds(1)) else { Issue.record("room to open"); return }
        let first = Connection(1)
        let waiter = Task { try await pool.lease(waitingAtMost: .seconds(10)) }
        try await Task.sleep(for: .milliseconds(50))
        #expect(pool.release(first, reusable: true) == nil)
        guard case .reused(let handed) = try await waiter.value else { Issue.record("handed over"); return }
        #expect(handed === first)
        #expect(pool.openCount == 1)
    }

    @Test("A broken connection is returned to be closed, and the next in line opens a new one")
    func broken() async throws {
        let pool = ConnectionPool<Connection>(capacity: 1)
        _ = try await pool.lease(waitingAtMost: .seconds(1))
        let waiter = Task { try await pool.lease(waitingAtMost: .seconds(10)) }
        try await Task.sleep(for: .milliseconds(50))
        let broken = Connection(1)
        #expect(pool.release(broken, reusable: false) === broken)
        guard case .open = try await waiter.value else { Issue.record("the waiter opens"); return }
    }

    @Test("A wait ends at its limit, or when its task is cancelled; shutdown fails the rest")
    func waits() async throws {
        let pool = ConnectionPool<Connection>(capacity: 1)
        _ = try await pool.lease(waitingAtMost: .seconds(1))
        await #expect(throws: ConnectionPool<Connection>.Failure.self) { try await pool.lease(waitingAtMost: .milliseconds(50)) }
        let cancelled = Task { try await pool.lease(waitingAtMost: .seconds(30)) }
        try await Task.sleep(for: .milliseconds(50))
        cancelled.cancel()
        await #expect(throws: CancellationError.self) { try await cancelled.value }
        let waiting = Task { try await pool.lease(waitingAtMost: .seconds(30)) }
        try await Task.sleep(for: .milliseconds(50))
        #expect(pool.shutdown().isEmpty)
        await #expect(throws: ConnectionPool<Connection>.Failure.self) { try await waiting.value }
        let lent = Connection(1)
        #expect(pool.release(lent, reusable: true) === lent, "closed once it comes back")
        await #expect(throws: ConnectionPool<Connection>.Failure.self) { try await pool.lease(waitingAtMost: .seconds(1)) }
    }

    @Test("Many tasks share a few connections: every lease served, never more than capacity open")
    func many() async throws {
        let pool = ConnectionPool<Connection>(capacity: 3)
        let counters = Counters()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<200 {
                group.addTask {
                    let connection: Connection
                    switch try await pool.lease(waitingAtMost: .seconds(30)) {
                    case .reused(let existing): connection = existing
                    case .open: connection = Connection(counters.made.add(1, ordering: .relaxed).newValue)
                    }
                    let now = counters.busy.add(1, ordering: .relaxed).newValue
                    _ = counters.peak.max(now, ordering: .relaxed)
                    await Task.yield()
                    counters.busy.subtract(1, ordering: .relaxed)
                    #expect(pool.release(connection, reusable: true) == nil)
                }
            }
            try await group.waitForAll()
        }
        #expect(counters.made.load(ordering: .relaxed) <= 3)
        #expect(counters.peak.load(ordering: .relaxed) <= 3)
        #expect(pool.openCount <= 3)
    }
}

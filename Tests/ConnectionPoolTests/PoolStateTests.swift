@testable import ConnectionPool
import Testing
import TestSupport

@Suite("The pool's state machine", .defaultPass)
struct PoolStateTests {
    @Test("Opens up to capacity, then queues callers in order and hands connections over")
    func capacityAndOrder() {
        var pool = PoolState<String>(capacity: 2)
        guard case .open = pool.lease(waiter: 1), case .open = pool.lease(waiter: 2) else { Issue.record("expected opens"); return }
        guard case .wait = pool.lease(waiter: 3), case .wait = pool.lease(waiter: 4) else { Issue.record("expected waits"); return }
        #expect(pool.open == 2)
        guard case .handOver(3, "a") = pool.release("a", reusable: true) else { Issue.record("first waiter first"); return }
        guard case .handOver(4, "b") = pool.release("b", reusable: true) else { Issue.record("then the next"); return }
        guard case .keep = pool.release("a", reusable: true) else { Issue.record("kept idle"); return }
        guard case .use("a") = pool.lease(waiter: 5) else { Issue.record("idle reused"); return }
        #expect(pool.open == 2)
    }

    @Test("A broken connection or a failed open lets a waiter open a new one; with no waiter its place is freed")
    func lostConnections() {
        var pool = PoolState<String>(capacity: 1)
        _ = pool.lease(waiter: 1)
        _ = pool.lease(waiter: 2)
        guard case .openFor(waiter: 2) = pool.release("a", reusable: false) else { Issue.record("waiter opens"); return }
        #expect(pool.open == 1)
        guard case .close = pool.openFailed() else { Issue.record("nobody waits"); return }
        #expect(pool.open == 0)
        guard case .open = pool.lease(waiter: 3) else { Issue.record("room again"); return }
    }

    @Test("A waiter that gave up is not served; shut down fails waiters and closes idle connections")
    func abandonAndShutDown() {
        var pool = PoolState<String>(capacity: 1)
        _ = pool.lease(waiter: 1)
        _ = pool.lease(waiter: 2)
        _ = pool.lease(waiter: 3)
        let first = pool.abandon(waiter: 2)
        let second = pool.abandon(waiter: 2)
        #expect(first && !second)
        guard case .handOver(3, "a") = pool.release("a", reusable: true) else { Issue.record("skips the abandoned"); return }
        _ = pool.lease(waiter: 4)
        let (idle, waiters) = pool.shutDown()
        #expect(idle.isEmpty && waiters == [4])
        guard case .close = pool.release("a", reusable: true) else { Issue.record("closed after shut down"); return }
        #expect(pool.open == 0)
        guard case .shutDown = pool.lease(waiter: 5) else { Issue.record("no lease after shut down"); return }
    }
}

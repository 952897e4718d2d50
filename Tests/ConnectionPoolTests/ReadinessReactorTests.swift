#if canImport(Glibc)
import ConnectionPool
import Glibc
import Testing
import Synchronization
import TestSupport
import WorkerRuntimeTesting

/// A connected pair of Unix sockets: the reactor watches `near`, the test writes to `far`.
private final class SocketPair: Sendable {
    let near: Int32
    let far: Int32

    init() {
        var pair: [Int32] = [0, 0]
        precondition(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &pair) == 0)
        _ = fcntl(pair[0], F_SETFL, fcntl(pair[0], F_GETFL) | O_NONBLOCK)
        near = pair[0]
        far = pair[1]
    }

    func send(_ count: Int) {
        let bytes = [UInt8](repeating: 7, count: count)
        #expect(write(far, bytes, count) == count)
    }

    /// Reads at most `count` bytes from `near`: what a reader that stops early leaves behind.
    func receive(atMost count: Int) -> Int {
        var buffer = [UInt8](repeating: 0, count: count)
        return read(near, &buffer, count)
    }

    deinit {
        close(near)
        close(far)
    }
}

@Suite("The readiness reactor", .defaultPass)
struct ReadinessReactorTests {
    @Test("A wait ends when data arrives, and not before")
    func wakesOnArrival() async throws {
        let reactor = try ReadinessReactor()
        defer { reactor.shutdown() }
        let pair = SocketPair()
        let socket = try #require(reactor.add(pair.near))
        let far = pair.far
        let woken = Atomic<Bool>(false)
        let waiter = Task {
            defer { woken.store(true, ordering: .relaxed) }
            return await reactor.readable(socket, until: .now + .seconds(10), recheck: false)
        }
        try await Task.sleep(for: .milliseconds(100))
        let wokenEarly = woken.load(ordering: .relaxed)
        #expect(!wokenEarly, "nothing to read yet")
        var byte: UInt8 = 1
        #expect(write(far, &byte, 1) == 1)
        #expect(await waiter.value == .readable)
        #expect(pair.receive(atMost: 16) == 1)
        reactor.remove(socket)
    }

    @Test("Data that came before the wait ends it at once, and marks an idle socket until taken")
    func arrivalBeforeWait() async throws {
        let reactor = try ReadinessReactor()
        defer { reactor.shutdown() }
        let pair = SocketPair()
        let socket = try #require(reactor.add(pair.near))
        pair.send(3)
        try await waitUntil("the arrival seen") { socket.takeArrivals() }
        #expect(!socket.takeArrivals(), "taking the mark clears it")
        pair.send(3)
        try await Task.sleep(for: .milliseconds(50))
        #expect(await reactor.readable(socket, until: .now + .seconds(10), recheck: false) == .readable)
        #expect(!socket.takeArrivals(), "the wait took the mark")
        reactor.remove(socket)
    }

    @Test("A reader that left data behind is woken by a recheck; without one it would wait for its deadline")
    func recheckFindsLeftovers() async throws {
        let reactor = try ReadinessReactor()
        defer { reactor.shutdown() }
        let pair = SocketPair()
        let socket = try #require(reactor.add(pair.near))
        pair.send(100)
        #expect(await reactor.readable(socket, until: .now + .seconds(10), recheck: false) == .readable)
        #expect(pair.receive(atMost: 10) == 10)
        // 90 bytes still unread and no new arrival: the edge is spent.
        #expect(await reactor.readable(socket, until: .now + .milliseconds(300), recheck: false) == .timedOut)
        #expect(await reactor.readable(socket, until: .now + .seconds(10), recheck: true) == .readable)
        #expect(pair.receive(atMost: 200) == 90)
        reactor.remove(socket)
    }

    @Test("A peer that hangs up wakes the waiter (its read then finds the end)")
    func hangUp() async throws {
        let reactor = try ReadinessReactor()
        defer { reactor.shutdown() }
        var pair: [Int32] = [0, 0]
        #expect(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &pair) == 0)
        defer { close(pair[0]) }
        let socket = try #require(reactor.add(pair[0]))
        let waiter = Task { await reactor.readable(socket, until: .now + .seconds(10), recheck: false) }
        try await Task.sleep(for: .milliseconds(50))
        close(pair[1])
        #expect(await waiter.value == .readable)
        var byte: UInt8 = 0
        #expect(read(pair[0], &byte, 1) == 0)
        reactor.remove(socket)
    }

    @Test("Removing a socket or shutting down ends its wait as closed; nothing is added after shutdown")
    func removeAndShutdown() async throws {
        let reactor = try ReadinessReactor()
        let first = SocketPair()
        let second = SocketPair()
        let removed = try #require(reactor.add(first.near))
        let stopped = try #require(reactor.add(second.near))
        let waitingOnRemoved = Task { await reactor.readable(removed, until: .now + .seconds(10), recheck: false) }
        let waitingOnStopped = Task { await reactor.readable(stopped, until: .now + .seconds(10), recheck: false) }
        try await Task.sleep(for: .milliseconds(50))
        reactor.remove(removed)
        #expect(await waitingOnRemoved.value == .closed)
        reactor.shutdown()
        #expect(await waitingOnStopped.value == .closed)
        #expect(reactor.add(SocketPair().near) == nil)
        #expect(await reactor.readable(stopped, until: .now + .seconds(10), recheck: false) == .closed)
    }

    @Test("Shutting down twice writes nothing to descriptors the reactor has given back")
    func secondShutdown() async throws {
        let reactor = try ReadinessReactor()
        reactor.shutdown()
        // The thread closes its epoll set and eventfd after the shutdown; the next descriptors
        // opened take their numbers.
        try await Task.sleep(for: .milliseconds(300))
        let pairs = (0..<8).map { _ in SocketPair() }
        reactor.shutdown()
        for pair in pairs {
            var buffer = [UInt8](repeating: 0, count: 16)
            #expect(recv(pair.near, &buffer, 16, Int32(MSG_DONTWAIT)) == -1, "nothing arrived on \(pair.near)")
            #expect(recv(pair.far, &buffer, 16, Int32(MSG_DONTWAIT)) == -1, "nothing arrived on \(pair.far)")
        }
    }

    @Test("As an executor: preferring tasks run on the reactor's thread and are resumed there by their socket's reply")
    func executorRunsTasksOnItsThread() async throws {
        let reactor = try ReadinessReactor()
        defer { reactor.shutdown() }
        let pairs = (0..<16).map { _ in SocketPair() }
        let sockets = try pairs.map { try #require(reactor.add($0.near)) }
        let threads = await withTaskGroup(of: (before: pthread_t, after: pthread_t, wake: ReadinessReactor.Wake).self) { group in
            for socket in sockets {
                group.addTask(executorPreference: reactor) {
                    let before = pthread_self()
                    let wake = await reactor.readable(socket, until: .now + .seconds(10), recheck: false)
                    return (before, pthread_self(), wake)
                }
            }
            try? await Task.sleep(for: .milliseconds(50))
            for pair in pairs { pair.send(1) }
            return await group.reduce(into: []) { $0.append($1) }
        }
        #expect(threads.count == 16 && threads.allSatisfy { $0.wake == .readable })
        let reactorThread = try #require(threads.first?.before)
        #expect(threads.allSatisfy { pthread_equal($0.before, reactorThread) != 0 && pthread_equal($0.after, reactorThread) != 0 })
        let outside = await Task { pthread_self() }.value
        #expect(pthread_equal(outside, reactorThread) == 0, "tasks without the preference run on the shared pool")
        for socket in sockets { reactor.remove(socket) }
    }

    @Test("As an executor: a job wakes an idle thread at once rather than at its next sweep")
    func executorWakesIdleThread() async throws {
        // A thread that would otherwise sleep a minute: only the enqueue's wake-up can run the job in time.
        let reactor = try ReadinessReactor(sweepInterval: .seconds(60))
        defer { reactor.shutdown() }
        final class Count: Sendable { let value = Atomic<Int>(0) }
        let ran = Count()
        for round in 1...3 {
            // Long enough for the thread to be asleep in its wait again.
            try await Task.sleep(for: .milliseconds(100))
            Task(executorPreference: reactor) { ran.value.add(1, ordering: .relaxed) }
            // Polled rather than awaited: without the wake-up the job would wait out the minute.
            try await waitUntil("job \(round) on an idle reactor", timeout: .seconds(5)) { ran.value.load(ordering: .relaxed) == round }
        }
    }

    @Test("Any sweep interval is accepted: none, negative and huge ones are clamped, not trapped on")
    func sweepIntervalBounds() throws {
        for interval: Duration in [.zero, .milliseconds(-5), .seconds(Int64.max), .nanoseconds(1)] {
            let reactor = try ReadinessReactor(sweepInterval: interval)
            reactor.shutdown()
        }
    }

    @Test("As an executor after shutdown: preferring tasks still run, on the shared pool, and none is lost")
    func executorAfterShutdown() async throws {
        // The shutdown itself must wake the thread: on its own it would sleep a minute with jobs queued.
        let reactor = try ReadinessReactor(sweepInterval: .seconds(60))
        let reactorThread = await Task(executorPreference: reactor) { pthread_self() }.value
        final class Record: Sendable {
            let finished = Mutex<[Int]>([])
            let onReactorThread = Atomic<Int>(0)
        }
        let record = Record()
        // Tasks that start just before the shutdown and well after it all finish.
        for n in 0..<20 {
            Task(executorPreference: reactor) {
                await Task.yield()
                record.finished.withLock { $0.append(n) }
            }
        }
        reactor.shutdown()
        try await Task.sleep(for: .milliseconds(300))
        for n in 20..<40 {
            Task(executorPreference: reactor) {
                if pthread_equal(pthread_self(), reactorThread) != 0 { record.onReactorThread.add(1, ordering: .relaxed) }
                record.finished.withLock { $0.append(n) }
            }
        }
        // Polled rather than awaited: a task whose job was dropped would never end.
        try await waitUntil("40 tasks preferring a reactor that shut down") { record.finished.withLock { $0.count } == 40 }
        #expect(record.finished.withLock { $0.sorted() } == Array(0..<40))
        #expect(record.onReactorThread.load(ordering: .relaxed) == 0, "the reactor's thread has ended")
    }

    @Test("Many sockets at once: each waiter is woken for its own socket only")
    func manySockets() async throws {
        let reactor = try ReadinessReactor()
        defer { reactor.shutdown() }
        let pairs = (0..<32).map { _ in SocketPair() }
        let sockets = try pairs.map { try #require(reactor.add($0.near)) }
        let outcomes = await withTaskGroup(of: (Int, ReadinessReactor.Wake).self) { group in
            for (index, socket) in sockets.enumerated() {
                let deadline: ContinuousClock.Instant = .now + (index.isMultiple(of: 2) ? .seconds(10) : .milliseconds(400))
                group.addTask { (index, await reactor.readable(socket, until: deadline, recheck: false)) }
            }
            try? await Task.sleep(for: .milliseconds(100))
            for (index, pair) in pairs.enumerated() where index.isMultiple(of: 2) { pair.send(1) }
            var outcomes: [Int: ReadinessReactor.Wake] = [:]
            for await (index, wake) in group { outcomes[index] = wake }
            return outcomes
        }
        for index in 0..<32 { #expect(outcomes[index] == (index.isMultiple(of: 2) ? .readable : .timedOut), "socket \(index)") }
        for socket in sockets { reactor.remove(socket) }
    }
}
#endif

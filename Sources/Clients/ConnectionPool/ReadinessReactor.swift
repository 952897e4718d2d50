#if canImport(Glibc)
import CEpoll
import Glibc
import Synchronization

/// One thread that waits in `epoll_wait` on the sockets of a client's connections and resumes the
/// task awaiting each one when it can be read. Handing each wait to a thread of its own (a
/// dispatch queue per connection) costs two thread hand-overs and two system calls more per
/// statement; here the kernel wakes one thread for all the sockets that became readable together.
///
/// Sockets are added once, edge-triggered: an arrival with nobody waiting is remembered
/// (`Socket.takeArrivals()`), so a wait that starts after its data came ends at once, and an idle
/// connection that heard from its server (a shutdown notice, a closed socket) says so without a
/// system call. A caller that read only part of what had arrived asks for a `recheck`, which
/// makes the kernel look at the socket again. Waits end by their deadline (checked every sweep
/// interval, 250 ms unless told) or when the reactor shuts down. A writer whose socket would
/// not take more bytes waits for room the same way (`writable`); only such a wait asks the kernel
/// for write readiness, so readers are never woken for it.
///
/// The thread is also a `TaskExecutor`: a task that prefers it is resumed by its socket's reply on
/// the thread that saw the reply, instead of being handed to a pool thread (a second wake-up). It
/// runs queued jobs, looks at the sockets without sleeping, and sleeps only when no job is left.
package final class ReadinessReactor: @unchecked Sendable {
    /// The end of one wait.
    package enum Wake: Sendable {
        /// Ready for what was awaited: something to read (or a hang-up) for `readable`, room to
        /// write (or a failure the next write reports) for `writable`.
        case readable
        /// The deadline passed first.
        case timedOut
        /// The reactor shut down, or the socket was removed while awaited.
        case closed
    }

    /// One added socket and its waiter.
    package final class Socket: Sendable {
        package let descriptor: Int32
        fileprivate let state = Mutex(SocketState())

        fileprivate init(_ descriptor: Int32) {
            self.descriptor = descriptor
        }

        /// Whether anything arrived since the last wait ended; clears the mark.
        package func takeArrivals() -> Bool {
            state.withLock { state in
                defer { state.arrived = false }
                return state.arrived
            }
        }
    }

    fileprivate struct SocketState: ~Copyable {
        var waiter: UnsafeContinuation<Wake, Never>?
        /// The waiter awaits room to write rather than something to read.
        var waitsToWrite = false
        var deadline = ContinuousClock.Instant.now
        var arrived = false
        /// Removed, or the reactor shut down: nobody would wake a waiter.
        var closed = false

        mutating func close() -> UnsafeContinuation<Wake, Never>? {
            closed = true
            return waiter.take()
        }
    }

    private struct Registry: ~Copyable {
        /// Indexed by descriptor: a socket is removed before its descriptor is closed, so the
        /// number is never shared by two added sockets.
        var sockets: [Socket?] = []
        var running = true
    }

    /// Jobs of tasks that prefer the reactor's thread (it is a `TaskExecutor`), run between waits.
    private struct JobQueue: ~Copyable {
        var jobs: [UnownedJob] = []
        /// The thread is in (or about to enter) a blocking `epoll_wait`: a new job must wake it.
        var sleeping = false
        /// The thread has ended: jobs go to the global executor.
        var ended = false
    }

    private let epoll: Int32
    private let wakeUp: Int32
    /// How often deadlines are checked, which is also the longest sleep of an idle thread.
    private let sweepInterval: Duration
    private let sweepMilliseconds: Int32
    private let registry = Mutex(Registry())
    private let queue = Mutex(JobQueue())

    /// Starts the reactor's thread; `shutdown()` ends it. `sweepInterval` (at least 1 ms) bounds
    /// how late a wait ends after its deadline; tests lengthen it to show that nothing else relies
    /// on the thread waking by itself.
    package init(sweepInterval: Duration = .milliseconds(250)) throws(ReactorError) {
        // In Double first: a huge interval must not overflow on the way to epoll's Int32 timeout.
        let milliseconds = Int64(max(1, min(Double(Int32.max), (sweepInterval / .milliseconds(1)).rounded(.up))))
        self.sweepInterval = .milliseconds(milliseconds)
        sweepMilliseconds = Int32(milliseconds)
        epoll = epoll_create1(Int32(EPOLL_CLOEXEC))
        guard epoll >= 0 else { throw ReactorError(operation: "epoll_create1", errno: errno) }
        wakeUp = eventfd(0, Int32(EFD_CLOEXEC | EFD_NONBLOCK))
        guard wakeUp >= 0 else {
            close(epoll)
            throw ReactorError(operation: "eventfd", errno: errno)
        }
        var event = epoll_event(events: EPOLLIN.rawValue, data: epoll_data_t(fd: -1))
        epoll_ctl(epoll, EPOLL_CTL_ADD, wakeUp, &event)
        // The thread holds the reactor until it ends (at `shutdown`).
        let unmanaged = Unmanaged.passRetained(self)
        var thread = pthread_t()
        let created = pthread_create(&thread, nil, { argument in
            let reactor = Unmanaged<ReadinessReactor>.fromOpaque(argument!).takeRetainedValue()
            reactor.loop()
            return nil
        }, unmanaged.toOpaque())
        guard created == 0 else {
            unmanaged.release()
            close(wakeUp)
            close(epoll)
            throw ReactorError(operation: "pthread_create", errno: created)
        }
        pthread_detach(thread)
    }

    /// Adds a socket; nil when the reactor is shut down or the kernel refused it (the caller then
    /// waits another way).
    package func add(_ descriptor: Int32) -> Socket? {
        guard descriptor >= 0 else { return nil }
        let socket = Socket(descriptor)
        let added = registry.withLock { registry -> Bool in
            guard registry.running else { return false }
            var event = Self.socketEvent(descriptor)
            guard epoll_ctl(epoll, EPOLL_CTL_ADD, descriptor, &event) == 0 else { return false }
            let index = Int(descriptor)
            if registry.sockets.count <= index { registry.sockets.append(contentsOf: repeatElement(nil, count: index + 1 - registry.sockets.count)) }
            registry.sockets[index] = socket
            return true
        }
        return added ? socket : nil
    }

    /// Removes a socket before its descriptor is closed; a wait on it ends as `.closed`.
    package func remove(_ socket: Socket) {
        registry.withLock { registry in
            // After shutdown the thread closes the epoll set (its number may be reused).
            guard registry.running else { return }
            var event = epoll_event()
            epoll_ctl(epoll, EPOLL_CTL_DEL, socket.descriptor, &event)
            let index = Int(socket.descriptor)
            if index < registry.sockets.count, registry.sockets[index] === socket { registry.sockets[index] = nil }
        }
        socket.state.withLock { $0.close() }?.resume(returning: .closed)
    }

    /// Waits until `socket` has something to read (or has hung up), at most until `deadline`; at
    /// once if something arrived since the last wait. `recheck` when the caller may have left
    /// data unread (it read part of a reply): the kernel then looks at the socket again. One wait
    /// per socket at a time.
    package func readable(_ socket: Socket, until deadline: ContinuousClock.Instant, recheck: Bool) async -> Wake {
        await withUnsafeContinuation { continuation in
            let early = socket.state.withLock { state -> Wake? in
                if state.closed { return .closed }
                if state.arrived {
                    state.arrived = false
                    return .readable
                }
                state.waiter = continuation
                state.waitsToWrite = false
                state.deadline = deadline
                return nil
            }
            if let early { return continuation.resume(returning: early) }
            guard recheck else { return }
            // The same registration again (without write readiness, should an earlier `writable`
            // have added it): the kernel looks at the socket now.
            var event = Self.socketEvent(socket.descriptor)
            if epoll_ctl(epoll, EPOLL_CTL_MOD, socket.descriptor, &event) != 0 {
                // Removed meanwhile: the caller's read finds out what happened.
                socket.state.withLock { $0.waiter.take() }?.resume(returning: .readable)
            }
        }
    }

    /// Waits until `socket` takes more bytes (or has failed), at most until `deadline`: for a
    /// writer that met a full send buffer, or TLS that must write before it can read. The
    /// registration gains write readiness, which makes the kernel report it now if the socket is
    /// writable already (the room may have come between the failed write and this wait). One
    /// wait per socket at a time, as for `readable`.
    package func writable(_ socket: Socket, until deadline: ContinuousClock.Instant) async -> Wake {
        await withUnsafeContinuation { continuation in
            let closed = socket.state.withLock { state -> Bool in
                if state.closed { return true }
                state.waiter = continuation
                state.waitsToWrite = true
                state.deadline = deadline
                return false
            }
            if closed { return continuation.resume(returning: .closed) }
            var event = Self.socketEvent(socket.descriptor, writing: true)
            if epoll_ctl(epoll, EPOLL_CTL_MOD, socket.descriptor, &event) != 0 {
                // Removed meanwhile: the caller's write finds out what happened.
                socket.state.withLock { $0.waiter.take() }?.resume(returning: .readable)
            }
        }
    }

    /// How every socket is registered: readable or hung up, edge-triggered; writable too once a
    /// writer waited (left in place until the next recheck: the kernel reports room again only
    /// after a write found none, which is when a writer waits for it).
    private static func socketEvent(_ descriptor: Int32, writing: Bool = false) -> epoll_event {
        let events = EPOLLIN.rawValue | EPOLLRDHUP.rawValue | EPOLLET.rawValue | (writing ? EPOLLOUT.rawValue : 0)
        return epoll_event(events: events, data: epoll_data_t(fd: descriptor))
    }

    /// What an event reports: something to read (or the end), room to write (or the end).
    private static func readiness(_ events: UInt32) -> (canRead: Bool, canWrite: Bool) {
        let ended = EPOLLHUP.rawValue | EPOLLERR.rawValue
        return (events & (EPOLLIN.rawValue | EPOLLRDHUP.rawValue | ended) != 0, events & (EPOLLOUT.rawValue | ended) != 0)
    }

    /// Ends the thread and the waits under way (as `.closed`); sockets can no longer be added.
    /// Only the first call does anything: the thread closes its descriptors once it has seen the
    /// shutdown, and their numbers then belong to whatever the process opens next.
    package func shutdown() {
        let sockets = registry.withLock { registry -> [Socket] in
            guard registry.running else { return [] }
            registry.running = false
            // Under the lock: the thread cannot see the shutdown (and close `wakeUp`) before this.
            wakeThread()
            defer { registry.sockets = [] }
            return registry.sockets.compactMap { $0 }
        }
        for socket in sockets { socket.state.withLock { $0.close() }?.resume(returning: .closed) }
    }

    /// Ends the thread's `epoll_wait`. Callers hold the lock under which the thread decides to
    /// close `wakeUp`, so the descriptor is still the reactor's.
    private func wakeThread() {
        var one: UInt64 = 1
        _ = write(wakeUp, &one, 8)
    }

    private func loop() {
        var events = [epoll_event](repeating: epoll_event(), count: 64)
        var nextSweep = ContinuousClock.now + sweepInterval
        let executor = asUnownedTaskExecutor()
        // Swapped with the queue's list under the lock and emptied here, so neither list is
        // reallocated per turn (a copy handed out under the lock made the queue's list shared,
        // and emptying a shared list allocates a new one).
        var batch: [UnownedJob] = []
        var stop = false
        while !stop {
            queue.withLock { queue in
                swap(&queue.jobs, &batch)
                queue.sleeping = batch.isEmpty
            }
            let idle = batch.isEmpty
            for job in batch { job.runSynchronously(on: executor) }
            batch.removeAll(keepingCapacity: true)
            let count = Int(epoll_wait(epoll, &events, Int32(events.count), idle ? sweepMilliseconds : 0))
            if idle && count != 0 { queue.withLock { $0.sleeping = false } }
            if count > 0 {
                let sockets = registry.withLock { registry in
                    stop = !registry.running
                    return (0..<count).map { index -> Socket? in
                        let descriptor = Int(events[index].data.fd)
                        return descriptor >= 0 && descriptor < registry.sockets.count ? registry.sockets[descriptor] : nil
                    }
                }
                if (0..<count).contains(where: { events[$0].data.fd == -1 }) {
                    var value: UInt64 = 0
                    _ = read(wakeUp, &value, 8)
                }
                for index in 0..<count {
                    guard let socket = sockets[index] else { continue }
                    let (canRead, canWrite) = Self.readiness(events[index].events)
                    let waiter = socket.state.withLock { state -> UnsafeContinuation<Wake, Never>? in
                        let readerWaits = state.waiter != nil && !state.waitsToWrite
                        // An arrival no reader takes now is kept for the next read wait (a writer
                        // waiting meanwhile does not consume it).
                        if canRead && !readerWaits { state.arrived = true }
                        guard state.waiter != nil, state.waitsToWrite ? canWrite : canRead else { return nil }
                        return state.waiter.take()
                    }
                    waiter?.resume(returning: .readable)
                }
            }
            let now = ContinuousClock.now
            if now >= nextSweep {
                nextSweep = now + sweepInterval
                let sockets = registry.withLock { $0.sockets.compactMap { $0 } }
                for socket in sockets {
                    let late = socket.state.withLock { state in
                        state.waiter != nil && state.deadline <= now ? state.waiter.take() : nil
                    }
                    late?.resume(returning: .timedOut)
                }
            }
        }
        // Jobs still queued, and any enqueued from now on, run on the global executor.
        let left = queue.withLock { queue in
            queue.ended = true
            defer { queue.jobs = [] }
            return queue.jobs
        }
        for job in left { globalConcurrentExecutor.enqueue(ExecutorJob(job)) }
        close(wakeUp)
        close(epoll)
    }
}

extension ReadinessReactor: TaskExecutor {
    /// Runs the job on the reactor's thread, between two waits. Tasks that mostly wait for this
    /// client's sockets run there without a hand-over between threads per reply.
    package func enqueue(_ job: consuming ExecutorJob) {
        let unowned = UnownedJob(job)
        let accepted = queue.withLock { queue -> Bool in
            guard !queue.ended else { return false }
            queue.jobs.append(unowned)
            if queue.sleeping {
                queue.sleeping = false
                // Under the lock: the thread closes `wakeUp` only after marking the queue ended.
                wakeThread()
            }
            return true
        }
        if !accepted { globalConcurrentExecutor.enqueue(ExecutorJob(unowned)) }
    }
}

/// The kernel refused what the reactor needs (an epoll set, an eventfd, a thread).
package struct ReactorError: Error, CustomStringConvertible, Sendable {
    package let operation: String
    package let errno: Int32

    package var description: String {
        "\(operation) failed: \(String(cString: strerror(errno))) (the process may be at its descriptor or thread limit)"
    }
}
#endif

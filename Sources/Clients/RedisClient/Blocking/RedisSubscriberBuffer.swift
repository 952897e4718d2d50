import Synchronization

/// The bounded queue between a subscriber's reading task and its one consumer. When the
/// consumer is `limit` events behind, the oldest event is dropped to make room for the newest,
/// and the next event the consumer takes is `.overflowed(dropped:)` with however many went since
/// it last heard: one notice for a whole burst, ahead of what is left, so the consumer re-checks
/// once rather than once per lost message. (An `AsyncStream` drops as well, but cannot tell its
/// consumer.)
package final class RedisSubscriberBuffer: Sendable {
    private struct State: ~Copyable {
        /// Queued from `head` on; the taken ones before it are cut off now and then.
        var events: [RedisSubscriber.Event] = []
        var head = 0
        /// Dropped since the consumer last heard of it.
        var unreported = 0
        var dropped = 0
        var waiter: CheckedContinuation<RedisSubscriber.Event?, Never>?
        var finished = false

        var queued: Int { events.count - head }

        mutating func compact() {
            if head >= 64 && head * 2 >= events.count {
                events.removeFirst(head)
                head = 0
            }
        }
    }

    package let limit: Int
    private let state = Mutex(State())

    package init(limit: Int) {
        precondition(limit > 0, "a subscriber's buffer holds one event at least")
        self.limit = limit
    }

    /// Events dropped since the buffer was made.
    package var dropped: Int { state.withLock { $0.dropped } }

    /// Hands `event` to the waiting consumer, else queues it, dropping the oldest when full.
    /// Nothing after `finish()`.
    package func push(_ event: RedisSubscriber.Event) {
        let waiter = state.withLock { state -> CheckedContinuation<RedisSubscriber.Event?, Never>? in
            guard !state.finished else { return nil }
            // A consumer waits only when nothing is queued and nothing went unreported.
            if let waiter = state.waiter.take() { return waiter }
            if state.queued >= limit {
                state.head += 1
                state.unreported += 1
                state.dropped += 1
            }
            state.events.append(event)
            state.compact()
            return nil
        }
        waiter?.resume(returning: event)
    }

    /// No more events: the consumer takes what is queued, then gets nil.
    package func finish() {
        let waiter = state.withLock { state in
            state.finished = true
            return state.waiter.take()
        }
        waiter?.resume(returning: nil)
    }

    /// The next event: a notice of dropped ones first, then the oldest queued; waits while there
    /// is none. Nil once finished and empty, when the consuming task is cancelled, or for a
    /// second consumer waiting beside the first.
    package func next() async -> RedisSubscriber.Event? {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<RedisSubscriber.Event?, Never>) in
                let ready = state.withLock { state -> RedisSubscriber.Event?? in
                    if state.unreported > 0 {
                        let notice = RedisSubscriber.Event.overflowed(dropped: state.unreported)
                        state.unreported = 0
                        return notice
                    }
                    if state.queued > 0 {
                        let event = state.events[state.head]
                        state.head += 1
                        state.compact()
                        return event
                    }
                    if state.finished || state.waiter != nil || Task.isCancelled { return .some(nil) }
                    state.waiter = continuation
                    return nil
                }
                if let ready { continuation.resume(returning: ready) }
            }
        } onCancel: {
            state.withLock { $0.waiter.take() }?.resume(returning: nil)
        }
    }
}

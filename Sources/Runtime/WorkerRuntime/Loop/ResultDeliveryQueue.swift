import Logging
import Synchronization

/// A queue worker's final results on their way to job-done. A finished job hands its result over
/// and its slot is free at once; delivery (first attempt included) runs here, retrying 5xx, 429,
/// timeouts and network errors with jittered backoff (or the platform's `Retry-After`) for a
/// bounded time. At most `maxResults` results, `maxBytes` bytes in all, wait at once: a job
/// finishing while the queue is full waits for room, so a platform that is down slows the worker
/// instead of filling its memory.
package final class ResultDeliveryQueue: Sendable {
    package struct Item: Sendable {
        package var jobID: String
        package var payload: ResultPayload
        package var isStream: Bool
        package var logger: Logger
        /// For a successful result: what to send instead when the platform refuses it (a 4xx), an
        /// error saying why, so the job still gets an outcome. Nil for an error result.
        package var fallback: (@Sendable (_ reason: String) -> ResultPayload)?
    }

    private struct State {
        var tasks: [UInt64: Task<Void, Never>] = [:]
        var bytes = 0
        var nextID: UInt64 = 0
        /// Items waiting for room, in the order their jobs finished, with their `deliver` callers.
        var roomWaiters: [(item: Item, size: Int, continuation: CheckedContinuation<Void, Never>)] = []
        var idleWaiters: [CheckedContinuation<Void, Never>] = []
        /// Set by `cancelAll`: deliveries started later are cancelled from the start.
        var cancelled = false
    }

    private let state = Mutex(State())
    private let sink: any ResultSink
    private let timings: WorkerTimings
    let maxResults: Int
    let maxBytes: Int

    package init(sink: any ResultSink, timings: WorkerTimings, maxResults: Int = 64, maxBytes: Int = 256 << 20) {
        self.sink = sink
        self.timings = timings
        self.maxResults = max(1, maxResults)
        self.maxBytes = maxBytes
    }

    /// Results not yet delivered (or given up).
    package var pending: Int { state.withLock { $0.tasks.count } }

    /// Starts delivering `item`; returns once it is queued (at once, unless the queue is full).
    package func deliver(_ item: Item) async {
        let size = item.payload.byteCount
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let admitted = state.withLock { state -> Bool in
                guard state.roomWaiters.isEmpty, Self.fits(size, in: state, maxResults: maxResults, maxBytes: maxBytes) else {
                    state.roomWaiters.append((item, size, continuation))
                    return false
                }
                start(item, size: size, in: &state)
                return true
            }
            if admitted { continuation.resume() }
        }
    }

    /// One that alone exceeds the byte budget is still taken when nothing else waits.
    private static func fits(_ size: Int, in state: State, maxResults: Int, maxBytes: Int) -> Bool {
        state.tasks.isEmpty || (state.tasks.count < maxResults && state.bytes + size <= maxBytes)
    }

    private func start(_ item: Item, size: Int, in state: inout State) {
        let id = state.nextID
        state.nextID += 1
        state.bytes += size
        let task = Task { [self] in
            await attempts(item)
            finished(id, size: size)
        }
        state.tasks[id] = task
        if state.cancelled { task.cancel() }
    }

    private func finished(_ id: UInt64, size: Int) {
        let (admitted, idle) = state.withLock { state -> ([CheckedContinuation<Void, Never>], [CheckedContinuation<Void, Never>]) in
            state.tasks[id] = nil
            state.bytes -= size
            var admitted: [CheckedContinuation<Void, Never>] = []
            while let first = state.roomWaiters.first, Self.fits(first.size, in: state, maxResults: maxResults, maxBytes: maxBytes) {
                state.roomWaiters.removeFirst()
                start(first.item, size: first.size, in: &state)
                admitted.append(first.continuation)
            }
            guard state.tasks.isEmpty else { return (admitted, []) }
            defer { state.idleWaiters.removeAll() }
            return (admitted, state.idleWaiters)
        }
        for waiter in admitted { waiter.resume() }
        for waiter in idle { waiter.resume() }
    }

    /// Posts until delivered, refused, out of time, or cancelled (the shutdown grace ran out).
    private func attempts(_ item: Item) async {
        var payload = item.payload
        var fallback = item.fallback
        var backoff = Backoff(base: timings.resultRetryBase, cap: timings.resultRetryCap)
        let started = ContinuousClock.now
        var attempt = 0
        while true {
            attempt += 1
            let outcome = await sink.postResult(payload, jobID: item.jobID, isStream: item.isStream)
            var wait: Duration
            switch outcome {
            case .delivered:
                item.logger.info("Finished.")
                return
            case .rejected(let reason):
                if let replacement = fallback {
                    item.logger.error("Failed to return job results. | job result refused: \(reason); sending an error result instead")
                    payload = replacement(reason)
                    fallback = nil
                    continue
                }
                item.logger.error("Failed to return job results. | job result refused: \(reason)")
                return
            case .failed:
                wait = backoff.next()
            case .throttled(_, let retryAfter):
                wait = max(backoff.next(), retryAfter ?? .zero)
            }
            let reason = outcome.reason ?? ""
            let elapsed = ContinuousClock.now - started
            if Task.isCancelled {
                item.logger.error(
                    "Failed to return job results. | the worker is shutting down and the delivery grace period is over; \(attempt) attempts, the last: \(reason)")
                return
            }
            guard elapsed + wait <= timings.resultRetryBudget else {
                item.logger.error(
                    "Failed to return job results. | gave up after \(attempt) attempts over \(elapsed.rounded()) (WORKER_RESULT_RETRY_SECONDS): \(reason)")
                return
            }
            item.logger.warning("Posting job result failed (attempt \(attempt)), retrying in \(wait.rounded()): \(reason)")
            try? await Task.sleep(for: wait)
        }
    }

    /// Waits until every result is delivered or given up, for at most `grace`; then cancels what
    /// is left (each logs that its result was not delivered) and waits for that.
    package func drain(grace: Duration, logger: Logger) async {
        let left = pending
        if left > 0 { logger.info("Delivering \(left) job results before exiting (up to \(grace)).") }
        // Cancelled deliveries end at once, so waiting for idle ends by the grace period.
        let timer = Task {
            try? await Task.sleep(for: grace)
            if !Task.isCancelled { self.cancelAll() }
        }
        await untilIdle()
        timer.cancel()
    }

    private func untilIdle() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let idle = state.withLock { state -> Bool in
                guard !state.tasks.isEmpty else { return true }
                state.idleWaiters.append(continuation)
                return false
            }
            if idle { continuation.resume() }
        }
    }

    /// Ends every delivery now (a hard stop, or the grace period is over).
    package func cancelAll() {
        let tasks = state.withLock { state in
            state.cancelled = true
            return Array(state.tasks.values)
        }
        for task in tasks { task.cancel() }
    }
}

extension Duration {
    /// To a hundredth of a second, for log lines.
    fileprivate func rounded() -> Duration {
        let (seconds, attoseconds) = components
        return .milliseconds(seconds * 1000 + attoseconds / 10_000_000_000_000_000 * 10)
    }
}

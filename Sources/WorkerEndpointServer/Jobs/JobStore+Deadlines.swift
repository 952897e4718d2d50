import EndpointAPI
import Synchronization
import WorkerRuntime

extension JobStore {
    /// Enforces every deadline, once per `interval`, until cancelled: execution timeouts, TTLs,
    /// result retention, and the waits of /runsync. One task for all jobs, instead of timers per job.
    func runJanitor(interval: Duration = .milliseconds(20)) async {
        while !Task.isCancelled {
            try? await Task.sleep(for: interval)
            sweep()
        }
    }

    /// One pass over the deadlines, as of the store's clock.
    func sweep() {
        let now = self.now()
        var cancelled: [Task<Void, Never>] = []
        var timedOut: [(String, Duration)] = []
        var resume: [CheckedContinuation<Void, Never>] = []
        var finished: [AsyncStream<JobEvent>.Continuation] = []
        var expired = 0
        state.withLock { state in
            Self.expire(&state.expiries, in: &state.jobs, now: now, cap: limits.maxRetainedResults)
            Self.expire(&state.syncExpiries, in: &state.jobs, now: now, cap: limits.maxRetainedSyncResults)
            for id in state.active {
                guard let job = state.jobs[id] else {
                    state.active.remove(id)
                    continue
                }
                if now >= job.createdAt + job.ttl {
                    if let task = job.task { cancelled.append(task) }
                    if job.status == .inQueue { state.queued -= 1 }
                    expired += 1
                    state.jobs[id] = nil
                    state.active.remove(id)
                    finished += state.listeners.removeValue(forKey: id).map { Array($0.values) } ?? []
                    resume += state.waiters.removeValue(forKey: id).map { $0.values.map(\.continuation) } ?? []
                } else if let started = job.startedAt, now >= started + job.executionTimeout {
                    timedOut.append((id, job.executionTimeout))
                }
            }
            for (id, waiting) in state.waiters {
                let expired = waiting.filter { $0.value.deadline <= now }
                guard !expired.isEmpty else { continue }
                for key in expired.keys { state.waiters[id]?[key] = nil }
                if state.waiters[id]?.isEmpty == true { state.waiters[id] = nil }
                resume += expired.values.map(\.continuation)
            }
        }
        for task in cancelled { task.cancel() }
        for continuation in finished { continuation.finish() }
        for continuation in resume { continuation.resume() }
        // Past its TTL a job is deleted, with no status of its own: counted as EXPIRED.
        for _ in 0..<expired { metrics.jobStopped(status: "EXPIRED") }
        for (id, limit) in timedOut {
            stop(id, as: .timedOut, error: "the job ran longer than its execution timeout of \(limit.wholeMilliseconds) ms")
        }
        metrics.queued(counts().queued)
    }

    /// Forgets finished jobs whose retention has passed, oldest first (and beyond the cap).
    /// Plain `inout` access: the lists hold up to `maxRetainedResults` entries and must never be copied.
    private static func expire(
        _ list: inout FIFO<Expiry>, in jobs: inout [String: StoredJob], now: ContinuousClock.Instant, cap: Int
    ) {
        while let first = list.first, first.deadline <= now || list.count > cap {
            list.removeFirst()
            // A retried job has a newer entry of its own (or none yet, while it runs again).
            if let job = jobs[first.id], job.status.isFinal, job.finishedAt == first.finished { jobs[first.id] = nil }
        }
    }
}

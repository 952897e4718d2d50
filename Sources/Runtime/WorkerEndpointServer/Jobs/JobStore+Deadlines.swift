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
        let now = JobTime(self.now())
        expireResults(now: now)
        var cancelled: [Task<Void, Never>] = []
        var timedOut: [(String, Duration)] = []
        var resume: [UnsafeContinuation<Void, Never>] = []
        var finished: [AsyncStream<JobEvent>.Continuation] = []
        var expired = 0
        state.withLock { state in
            for job in state.active.values {
                switch state.machine.checkDeadlines(&job.lifecycle, now: now) {
                case .notDue:
                    continue
                case .expire:
                    if let task = job.task { cancelled.append(task) }
                    job.stopped = true
                    state.jobs.remove(job)
                    state.active[job.key] = nil
                    let observers = Self.takeObservers(of: job, in: &state)
                    resume += observers.waiters.map(\.continuation)
                    finished += observers.listeners
                    expired += 1
                case .timeOut(let limit):
                    timedOut.append((job.id, limit))
                }
            }
            for job in state.waited.values {
                let due = job.waiters.filter { $0.value.deadline <= now }
                guard !due.isEmpty else { continue }
                for key in due.keys { job.waiters[key] = nil }
                if job.waiters.isEmpty { state.waited[job.key] = nil }
                resume += due.values.map(\.continuation)
            }
        }
        for task in cancelled { task.cancel() }
        for continuation in finished { continuation.finish() }
        for continuation in resume { continuation.resume() }
        for _ in 0..<expired { metrics.jobStopped(status: "EXPIRED") }
        for (id, limit) in timedOut {
            stop(id, as: .timedOut, error: "the job ran longer than its execution timeout of \(limit.wholeMilliseconds) ms")
        }
        state.withLock { publishQueueDepth(&$0) }
    }

    /// Forgets finished jobs whose retention has passed, oldest first, a small batch per lock hold
    /// so a burst of expiries never holds up the job path; the forgotten jobs are released after
    /// the lock. (The caps are kept as jobs finish.)
    private func expireResults(now: JobTime) {
        while true {
            var forgotten: [StoredJob] = []
            forgotten.reserveCapacity(Self.expiryBatch)
            let more = state.withLock { state -> Bool in
                let run = expire(.run, now: now, in: &state, into: &forgotten)
                let sync = expire(.sync, now: now, in: &state, into: &forgotten)
                return run || sync
            }
            forgotten.removeAll()
            if !more { return }
        }
    }

    private static let expiryBatch = 64

    /// Up to a batch of expiries from one list; true when more are due.
    private func expire(_ list: JobRetention.List, now: JobTime, in state: inout State, into forgotten: inout [StoredJob]) -> Bool {
        var removed = 0
        while let first = list == .sync ? state.syncExpiries.first : state.expiries.first,
            state.machine.retentionPassed(first.lifecycle, now: now)
        {
            guard removed < Self.expiryBatch else { return true }
            forgotten.append(forgetOldest(list, in: &state))
            removed += 1
        }
        return false
    }
}

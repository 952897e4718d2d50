import EndpointAPI
import Synchronization
import WorkerJSON
import WorkerRuntime

extension JobStore {
    /// Cancels (or times out) a job: a queued job never runs, a running one has its task cancelled;
    /// nothing it produces afterwards is kept. Returns `{id, status}`, nil for an unknown job.
    @discardableResult
    func stop(_ id: String, as status: JobStatus, error: String? = nil) -> JSONValue? {
        let now = JobTime(self.now())
        var evicted: [StoredJob] = []
        defer { evicted.removeAll() }
        let stopped = state.withLock {
            state -> (StoredJob, (task: Task<Void, Never>?, observers: Observers, wasQueued: Bool, webhook: Bool)?)? in
            guard let job = state.jobs[id: id] else { return nil }
            switch state.machine.stop(&job.lifecycle, as: status, now: now) {
            case .gone:
                return nil
            case .alreadyFinal:
                return (job, nil)
            case .stop(let retention, let wasQueued, let sendWebhook):
                let task = job.task
                job.stopped = true
                job.error = error
                evicted = settle(job, retention, in: &state)
                let observers = Self.takeObservers(of: job, in: &state)
                return (job, (task: task, observers: observers, wasQueued: wasQueued, webhook: sendWebhook))
            }
        }
        guard let (job, stopping) = stopped else { return nil }
        if let stopping {
            stopping.task?.cancel()
            let input = releaseInput(job)
            notify(stopping.observers, job.report(now: now, workerID: workerID))
            metrics.jobStopped(status: status.rawValue)
            if stopping.webhook { deliverWebhook(job, input: input, now: now) }
            // The queue changed: publish its depth (and start what may start).
            if stopping.wasQueued { dispatch() }
        }
        return ["id": .string(id), "status": .string(job.status.rawValue)]
    }

    /// Queues a FAILED or TIMED_OUT job again under the same id, its old output removed.
    func retry(_ id: String) throws(APIError) -> JSONValue {
        let now = JobTime(self.now())
        let result = state.withLock { state -> Result<Void, APIError> in
            guard let job = state.jobs[id: id] else { return .failure(.notFound("job \(id) not found (unknown, or expired)")) }
            switch state.machine.retry(job.lifecycle, now: now) {
            case .refuse(let status):
                return .failure(.badRequest("only FAILED or TIMED_OUT jobs can be retried; job \(id) is \(status.rawValue)"))
            case .requeue(let lifecycle):
                let again = StoredJob(id: job.id, request: job.request, lifecycle: lifecycle, tableKey: job.tableKey)
                state.jobs.insert(again)
                state.active[again.key] = again
                state.queue.append(again)
                return .success(())
            }
        }
        try result.get()
        dispatch()
        return ["id": .string(id), "status": "IN_QUEUE"]
    }

    /// Removes every queued job; running jobs are left alone.
    func purgeQueue() -> JSONValue {
        var removedJobs: [StoredJob] = []
        var observers: [Observers] = []
        state.withLock { state in
            while !state.queue.isEmpty {
                let job = state.queue.removeFirst()
                // Stale entries (stopped, or past their TTL, while queued) were counted out then.
                guard case .remove = state.machine.purge(&job.lifecycle) else { continue }
                state.jobs.remove(job)
                state.active[job.key] = nil
                observers.append(Self.takeObservers(of: job, in: &state))
                removedJobs.append(job)
            }
            state.machine.queuePurged()
            publishQueueDepth(&state)
        }
        // A purged job is gone (404), as on the platform: its waiters wake to find nothing.
        for observer in observers {
            for waiter in observer.waiters { waiter.continuation.resume() }
            for listener in observer.listeners { listener.finish() }
        }
        for _ in removedJobs { metrics.jobStopped(status: JobStatus.cancelled.rawValue) }
        return ["removed": .integer(Int64(removedJobs.count)), "status": "completed"]
    }

    /// Cancels every queued job (shutdown); returns how many there were.
    func dropQueued() -> Int {
        let queued = state.withLock { state -> [StoredJob] in
            state.machine.close()
            var jobs: [StoredJob] = []
            while !state.queue.isEmpty {
                let job = state.queue.removeFirst()
                if job.lifecycle.isQueued { jobs.append(job) }
            }
            return jobs
        }
        for job in queued { stop(job.id, as: .cancelled, error: "the worker shut down before the job started") }
        return queued.count
    }

    /// Returns once no job is running.
    func drain() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let done = state.withLock { state -> Bool in
                if state.machine.isIdle { return true }
                state.drainWaiters.append(continuation)
                return false
            }
            if done { continuation.resume() }
        }
    }
}

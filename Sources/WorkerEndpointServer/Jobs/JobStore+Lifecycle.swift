#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import EndpointAPI
import Logging
import Synchronization
import WorkerJSON
import WorkerRuntime

extension JobStore {
    /// Queues a validated request; the job starts when a slot is free.
    func submit(_ request: JobRequest, sync: Bool) -> StoredJob {
        let id = (sync ? "sync-" : "") + UUID().uuidString.lowercased() + "-u1"
        let job = StoredJob(
            id: id, request: request, defaults: (limits.defaultExecutionTimeout, limits.defaultTTL), isSync: sync,
            now: now())
        state.withLock { state in
            state.jobs[id] = job
            state.active.insert(id)
            state.queue.append(id)
            state.queued += 1
        }
        dispatch()
        return job
    }

    /// Starts queued jobs while slots are free.
    func dispatch() {
        let now = self.now()
        let options = context.options
        let environment = context.configuration.concurrency
        let queued = state.withLock { state -> Int in
            let limit = options.concurrency.evaluate(current: state.concurrency, environment: environment)
            state.concurrency = limit
            while !state.closed, state.running < limit, !state.queue.isEmpty {
                let id = state.queue.removeFirst()
                guard let job = state.jobs[id], job.status == .inQueue else { continue }
                state.queued -= 1
                state.running += 1
                state.jobs[id]!.status = .inProgress
                state.jobs[id]!.startedAt = now
                state.jobs[id]!.task = Task { await self.execute(job) }
            }
            return state.queued
        }
        metrics.queued(queued)
    }

    private func execute(_ job: StoredJob) async {
        let id = job.id
        _ = await runner.run(
            Job(id: id, input: job.request.input, extra: job.request.extra), executionTimeout: job.executionTimeout
        ) { [self] in
            state.withLock { $0.jobs[id]?.stopped ?? true }
        }
        let drained = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.running -= 1
            guard state.running == 0 else { return [] }
            defer { state.drainWaiters = [] }
            return state.drainWaiters
        }
        for waiter in drained { waiter.resume() }
        dispatch()
    }

    // MARK: Results from the runner

    func recordProgress(_ id: String, _ value: JSONValue) {
        state.withLock { state in
            guard let job = state.jobs[id], !job.stopped, !job.status.isFinal else { return }
            state.jobs[id]!.progress = value
        }
    }

    func recordChunk(_ id: String, _ chunk: JSONValue) {
        let listeners = state.withLock { state -> [Int: AsyncStream<JobEvent>.Continuation]? in
            guard let job = state.jobs[id], !job.stopped, !job.status.isFinal else { return nil }
            // In place: copying the job out and back would copy its chunk lists for every chunk.
            state.jobs[id]!.unpolledChunks.append(chunk)
            state.jobs[id]!.allChunks.append(chunk)
            return state.listeners[id]
        }
        notify(listeners, .chunk(chunk), finish: false)
    }

    /// The runner's final body: COMPLETED with its output, or FAILED with its error.
    func recordResult(_ id: String, _ body: JSONValue, isStream: Bool) {
        let now = self.now()
        let finished = state.withLock { state -> (StoredJob, [Int: AsyncStream<JobEvent>.Continuation]?, [Waiter])? in
            guard let current = state.jobs[id], !current.stopped, !current.status.isFinal else { return nil }
            // Taken out of the table while it changes, so its chunk lists are not copied.
            var job = state.jobs.removeValue(forKey: id)!
            var output = body["output"]
            if isStream, output == [], !job.allChunks.isEmpty { output = .array(job.allChunks) }
            job.output = output
            if let error = body["error"] {
                job.status = .failed
                job.error = ResultBody.errorText(error)
                state.counters.failed += 1
            } else {
                job.status = .completed
                state.counters.completed += 1
            }
            finish(&job, in: &state, now: now)
            return (job, state.listeners.removeValue(forKey: id), state.waiters.removeValue(forKey: id).map { Array($0.values) } ?? [])
        }
        guard let (job, listeners, waiters) = finished else { return }
        notify(listeners, .finished(job.report(now: now, workerID: workerID)), finish: true)
        for waiter in waiters { waiter.continuation.resume() }
        deliverWebhook(job, now: now)
    }

    /// Marks `job` final and stores it (it was taken out of `state.jobs`, so nothing is copied).
    private func finish(_ job: inout StoredJob, in state: inout State, now: ContinuousClock.Instant) {
        job.finishedAt = now
        job.progress = nil
        job.task = nil
        job.allChunks = []
        state.active.remove(job.id)
        if job.isSync {
            state.syncExpiries.append(Expiry(deadline: now + limits.syncRetention, id: job.id, finished: now))
        } else {
            state.expiries.append(Expiry(deadline: now + limits.retention, id: job.id, finished: now))
        }
        state.jobs[job.id] = job
    }

    // MARK: Control

    /// Cancels (or times out) a job: a queued job never runs, a running one has its task cancelled;
    /// nothing it produces afterwards is kept. Returns `{id, status}`, nil for an unknown job.
    @discardableResult
    func stop(_ id: String, as status: JobStatus, error: String? = nil) -> JSONValue? {
        let now = self.now()
        let stopped = state.withLock {
            state -> (StoredJob, Task<Void, Never>?, [Int: AsyncStream<JobEvent>.Continuation]?, [Waiter], Bool)? in
            guard var job = state.jobs.removeValue(forKey: id) else { return nil }
            guard !job.status.isFinal else {
                state.jobs[id] = job
                return (job, nil, nil, [], false)
            }
            if job.status == .inQueue { state.queued -= 1 }
            let task = job.task
            job.status = status
            job.stopped = true
            job.error = error
            if status == .timedOut { state.counters.failed += 1 }
            finish(&job, in: &state, now: now)
            return (
                job, task, state.listeners.removeValue(forKey: id),
                state.waiters.removeValue(forKey: id).map { Array($0.values) } ?? [], true
            )
        }
        guard let (job, task, listeners, waiters, changed) = stopped else { return nil }
        if changed {
            task?.cancel()
            notify(listeners, .finished(job.report(now: now, workerID: workerID)), finish: true)
            for waiter in waiters { waiter.continuation.resume() }
            metrics.jobStopped(status: status.rawValue)
            if status == .timedOut { deliverWebhook(job, now: now) }
            if job.startedAt == nil { dispatch() }
        }
        return ["id": .string(id), "status": .string(job.status.rawValue)]
    }

    /// Queues a FAILED or TIMED_OUT job again under the same id, its old output removed.
    func retry(_ id: String) throws(APIError) -> JSONValue {
        let now = self.now()
        let result = state.withLock { state -> Result<Void, APIError> in
            guard let job = state.jobs[id] else { return .failure(.notFound("job \(id) not found (unknown, or expired)")) }
            guard job.status == .failed || job.status == .timedOut else {
                return .failure(.badRequest("only FAILED or TIMED_OUT jobs can be retried; job \(id) is \(job.status.rawValue)"))
            }
            state.jobs[id] = job.requeued(now: now)
            state.active.insert(id)
            state.queue.append(id)
            state.queued += 1
            state.counters.retried += 1
            return .success(())
        }
        try result.get()
        dispatch()
        return ["id": .string(id), "status": "IN_QUEUE"]
    }

    /// Removes every queued job; running jobs are left alone.
    func purgeQueue() -> JSONValue {
        var resume: [CheckedContinuation<Void, Never>] = []
        var finished: [AsyncStream<JobEvent>.Continuation] = []
        let removed = state.withLock { state -> Int in
            var removed = 0
            while !state.queue.isEmpty {
                let id = state.queue.removeFirst()
                guard state.jobs[id]?.status == .inQueue else { continue }
                state.jobs[id] = nil
                state.active.remove(id)
                resume += state.waiters.removeValue(forKey: id)?.values.map(\.continuation) ?? []
                finished += state.listeners.removeValue(forKey: id).map { Array($0.values) } ?? []
                removed += 1
            }
            state.queued = 0
            return removed
        }
        for continuation in resume { continuation.resume() }
        for continuation in finished { continuation.finish() }
        for _ in 0..<removed { metrics.jobStopped(status: JobStatus.cancelled.rawValue) }
        metrics.queued(0)
        return ["removed": .integer(Int64(removed)), "status": "completed"]
    }

    private func deliverWebhook(_ job: StoredJob, now: ContinuousClock.Instant) {
        guard let url = job.request.webhook else { return }
        let payload = job.report(now: now, workerID: workerID).webhookPayload(input: job.request.input, webhook: url)
        let delays = limits.webhookRetryDelays
        let timeout = limits.webhookTimeout
        let client = context.httpClient
        var logger = self.logger
        logger[metadataKey: "job-id"] = "\(job.id)"
        Task { [logger] in
            await Webhook.deliver(payload, to: url, retryDelays: delays, timeout: timeout, client: client, logger: logger)
        }
    }
}

extension JobStore {
    /// Cancels every queued job (shutdown); returns how many there were.
    func dropQueued() -> Int {
        var dropped = 0
        state.withLock { $0.closed = true }
        while let id = state.withLock({ state -> String? in
            while !state.queue.isEmpty {
                let id = state.queue.removeFirst()
                if state.jobs[id]?.status == .inQueue { return id }
            }
            return nil
        }) {
            stop(id, as: .cancelled, error: "the worker shut down before the job started")
            dropped += 1
        }
        return dropped
    }

    /// Returns once no job is running.
    func drain() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let done = state.withLock { state -> Bool in
                if state.running == 0 { return true }
                state.drainWaiters.append(continuation)
                return false
            }
            if done { continuation.resume() }
        }
    }
}

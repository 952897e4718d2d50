import EndpointAPI
import Logging
import Synchronization
import WorkerJSON
import WorkerRuntime

extension JobStore {
    /// Queues a validated request; the job starts when a slot is free. A `/runsync` job that
    /// finds a free slot (and nobody queued before it) starts on the caller's thread
    /// (`Task.immediateDetached`): the caller waits for it anyway, and a job that finishes without
    /// suspending then costs no thread hand-off. Returns the job, and its report when it is
    /// already final. With `events`, the job's chunks and final report go there from its start.
    /// Past the queued-input budget (`QUEUED_INPUT_MB`) a job is refused with a 429 and
    /// `Retry-After`, unless the queue is empty: one job larger than the budget still runs.
    /// `requestBytes` is the length of the body the request came in, when there was one.
    @discardableResult
    func submit(
        _ request: JobRequest, sync: Bool, events: AsyncStream<JobEvent>.Continuation? = nil, retained: Bool = true,
        requestBytes: Int? = nil
    ) throws(APIError) -> (job: StoredJob, finished: JobStatusReport?) {
        let job = StoredJob(
            id: ids.next(sync: sync), request: request, defaults: (limits.defaultExecutionTimeout, limits.defaultTTL),
            isSync: sync, now: now(), requestBytes: requestBytes)
        job.retained = retained
        let admitted = state.withLock { state -> [StoredJob]? in
            guard state.queued == 0 || state.queuedBytes + job.inputBytes <= limits.queuedInputBytes else { return nil }
            if let events { addListener(events, to: job, in: &state) }
            state.jobs.insert(job)
            enqueue(job, in: &state)
            let started = startQueued(in: &state)
            // A /runsync job about to run on this thread joins the active set in `start`, and only
            // if it has not finished by then (most have): two hash-table updates saved per job.
            if !sync || !started.contains(where: { $0 === job }) { state.active[job.key] = job }
            return started
        }
        guard let started = admitted else {
            events?.finish()
            throw .tooManyRequests(
                "the queue holds \(counts().queued) jobs with more input than the budget of \(limits.queuedInputBytes >> 20) MB "
                    + "(QUEUED_INPUT_MB); retry once some have started", retryAfter: 1)
        }
        return (job, start(started, immediately: sync ? job : nil))
    }

    private func enqueue(_ job: StoredJob, in state: inout State) {
        state.queue.append(job)
        state.queued += 1
        state.queuedBytes += job.inputBytes
    }

    /// A queued job leaves the queue (started, cancelled, expired, purged).
    func dequeued(_ job: StoredJob, in state: inout State) {
        state.queued -= 1
        state.queuedBytes -= job.inputBytes
    }

    /// Starts queued jobs while slots are free.
    func dispatch() {
        let started = state.withLock { state in startQueued(in: &state) }
        start(started, immediately: nil)
    }

    /// Marks the queued jobs that free slots allow as started (under the lock).
    private func startQueued(in state: inout State) -> [StoredJob] {
        let limit =
            fixedConcurrency
            ?? context.options.concurrency.evaluate(current: state.concurrency, environment: context.configuration.concurrency)
        state.concurrency = limit
        var started: [StoredJob] = []
        guard !state.closed, state.running < limit, !state.queue.isEmpty else {
            publishQueueDepth(&state)
            return started
        }
        let now = self.now()
        while state.running < limit, !state.queue.isEmpty {
            let job = state.queue.removeFirst()
            // Cancelled, or past its TTL (deleted, still IN_QUEUE): it left the queue's counts then.
            guard job.status == .inQueue, !job.stopped else { continue }
            dequeued(job, in: &state)
            state.running += 1
            job.status = .inProgress
            job.startedAt = now
            started.append(job)
        }
        publishQueueDepth(&state)
        return started
    }

    /// The queue-depth gauge, set when the depth changed since it was last set (twice a job
    /// otherwise, for the same value). Under the lock, so values are set in order.
    func publishQueueDepth(_ state: inout State) {
        guard state.queued != state.publishedQueueDepth else { return }
        state.publishedQueueDepth = state.queued
        metrics.queued(state.queued)
    }

    /// Runs the started jobs' tasks, after the lock: an immediate task runs its job right here,
    /// and the job takes the lock. Returns the report of `first` if it has already finished.
    @discardableResult
    private func start(_ started: [StoredJob], immediately first: StoredJob?) -> JobStatusReport? {
        var finished: JobStatusReport?
        for job in started {
            // Detached: a job outlives the request that submitted it and takes nothing from its
            // task (its task-local values cost a copy per job).
            let task = job === first ? Task.immediateDetached { await self.execute(job) } : Task.detached { await self.execute(job) }
            let now = self.now()
            let (stoppedMeanwhile, report) = state.withLock { state -> (Bool, JobStatusReport?) in
                if job.status.isFinal {
                    return (false, job === first ? job.report(now: now, workerID: workerID) : nil)
                }
                if job.stopped { return (true, nil) }
                job.task = task
                if job === first { state.active[job.key] = job }
                return (false, nil)
            }
            // A /cancel or timeout between the start and here found no task to cancel.
            if stoppedMeanwhile { task.cancel() }
            if report != nil { finished = report }
        }
        return finished
    }

    private func execute(_ job: StoredJob) async {
        _ = await runner(for: job).run(
            Job(id: job.id, input: job.request.input, extra: job.request.extra), executionTimeout: job.executionTimeout
        ) { job.stopped }
        let (drained, next) = state.withLock { state -> ([CheckedContinuation<Void, Never>], [StoredJob]) in
            state.running -= 1
            let next = startQueued(in: &state)
            guard state.running == 0 else { return ([], next) }
            defer { state.drainWaiters = [] }
            return (state.drainWaiters, next)
        }
        for waiter in drained { waiter.resume() }
        start(next, immediately: nil)
    }

    // MARK: Results from the runner

    func recordProgress(_ job: StoredJob, _ value: JSONValue) {
        let listeners = state.withLock { _ -> [AsyncStream<JobEvent>.Continuation] in
            guard !job.stopped, !job.status.isFinal else { return [] }
            job.progress = value
            return Array(job.listeners.values)
        }
        for listener in listeners { listener.yield(.progress(value)) }
    }

    func recordChunk(_ job: StoredJob, _ chunk: JSONValue, bytes: Int) {
        let listeners = state.withLock { _ -> [AsyncStream<JobEvent>.Continuation] in
            guard !job.stopped, !job.status.isFinal else { return [] }
            job.chunkBytes += bytes
            job.unpolledChunks.append(chunk)
            job.allChunks.append(chunk)
            return Array(job.listeners.values)
        }
        for listener in listeners { listener.yield(.chunk(chunk)) }
    }

    /// The runner's final body: COMPLETED with its output, or FAILED with its error.
    func recordResult(_ job: StoredJob, _ body: JSONValue, bytes: Int, isStream: Bool) {
        let now = self.now()
        var evicted: [StoredJob] = []
        defer { evicted.removeAll() }
        let finished = state.withLock { state -> (StoredJob, (waiters: [Waiter], listeners: [AsyncStream<JobEvent>.Continuation]))? in
            guard !job.stopped, !job.status.isFinal else { return nil }
            var output = body["output"]
            job.resultBytes = bytes
            if isStream, output == [], !job.allChunks.isEmpty {
                output = .array(job.allChunks)
                job.resultBytes += job.chunkBytes
            }
            job.output = output
            if let error = body["error"] {
                job.status = .failed
                job.error = ResultBody.errorText(error)
                state.counters.failed += 1
            } else {
                job.status = .completed
                state.counters.completed += 1
            }
            evicted = finish(job, in: &state, now: now)
            return (job, Self.takeObservers(of: job, in: &state))
        }
        guard let (job, observers) = finished else { return }
        notify(observers, job.report(now: now, workerID: workerID))
        deliverWebhook(job, now: now)
    }

    /// Marks `job` final: it leaves the active set and joins its retention list. Past that list's
    /// cap, or past the retained-bytes budget (`RETAINED_RESULTS_MB`), the oldest results are
    /// forgotten here (the janitor handles time); they are returned so the caller releases them
    /// after the lock. The job just finished is kept whatever its size, so its caller sees it.
    @discardableResult
    private func finish(_ job: StoredJob, in state: inout State, now: ContinuousClock.Instant) -> [StoredJob] {
        job.finishedAt = now
        job.progress = nil
        job.task = nil
        job.allChunks = []
        state.active[job.key] = nil
        guard job.retained else {
            // Its listener has the final report; nobody else can ask for it.
            state.jobs.remove(job)
            return []
        }
        state.retainedBytes += job.retainedBytes
        var evicted: [StoredJob] = []
        if job.isSync {
            state.syncExpiries.append(job)
            if state.syncExpiries.count > limits.maxRetainedSyncResults { evicted.append(forgetOldest(sync: true, in: &state)) }
        } else {
            state.expiries.append(job)
            if state.expiries.count > limits.maxRetainedResults { evicted.append(forgetOldest(sync: false, in: &state)) }
        }
        while state.retainedBytes > limits.retainedResultBytes, state.expiries.count + state.syncExpiries.count > 1 {
            // The older of the two lists' heads goes first. `job` is the newest kept: when it heads
            // its list it is alone there, and the other list's head goes.
            let run = state.expiries.first, sync = state.syncExpiries.first
            let fromSync = run == nil || run === job || (sync != nil && sync!.finishedAt! < run!.finishedAt!)
            evicted.append(forgetOldest(sync: fromSync, in: &state))
        }
        return evicted
    }

    /// Removes the oldest finished job of one retention list from the store.
    func forgetOldest(sync: Bool, in state: inout State) -> StoredJob {
        let oldest = sync ? state.syncExpiries.removeFirst() : state.expiries.removeFirst()
        state.retainedBytes -= oldest.retainedBytes
        // A retried job has a newer object under its id (queued or running again): that stays.
        state.jobs.remove(oldest)
        return oldest
    }

    // MARK: Control

    /// Cancels (or times out) a job: a queued job never runs, a running one has its task cancelled;
    /// nothing it produces afterwards is kept. Returns `{id, status}`, nil for an unknown job.
    @discardableResult
    func stop(_ id: String, as status: JobStatus, error: String? = nil) -> JSONValue? {
        let now = self.now()
        var evicted: [StoredJob] = []
        defer { evicted.removeAll() }
        let stopped = state.withLock {
            state -> (StoredJob, Task<Void, Never>?, (waiters: [Waiter], listeners: [AsyncStream<JobEvent>.Continuation])?)? in
            guard let job = state.jobs[id: id] else { return nil }
            guard !job.status.isFinal else { return (job, nil, nil) }
            if job.status == .inQueue { dequeued(job, in: &state) }
            let task = job.task
            job.status = status
            job.stopped = true
            job.error = error
            if status == .timedOut { state.counters.failed += 1 }
            evicted = finish(job, in: &state, now: now)
            return (job, task, Self.takeObservers(of: job, in: &state))
        }
        guard let (job, task, observers) = stopped else { return nil }
        if let observers {
            task?.cancel()
            notify(observers, job.report(now: now, workerID: workerID))
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
            guard let job = state.jobs[id: id] else { return .failure(.notFound("job \(id) not found (unknown, or expired)")) }
            guard job.status == .failed || job.status == .timedOut else {
                return .failure(.badRequest("only FAILED or TIMED_OUT jobs can be retried; job \(id) is \(job.status.rawValue)"))
            }
            let again = job.requeued(now: now)
            state.jobs.insert(again)
            state.active[again.key] = again
            enqueue(again, in: &state)
            state.counters.retried += 1
            return .success(())
        }
        try result.get()
        dispatch()
        return ["id": .string(id), "status": "IN_QUEUE"]
    }

    /// Removes every queued job; running jobs are left alone.
    func purgeQueue() -> JSONValue {
        var removedJobs: [StoredJob] = []
        var observers: [(waiters: [Waiter], listeners: [AsyncStream<JobEvent>.Continuation])] = []
        state.withLock { state in
            while !state.queue.isEmpty {
                let job = state.queue.removeFirst()
                guard job.status == .inQueue, state.jobs[id: job.id] === job else { continue }
                state.jobs.remove(job)
                state.active[job.key] = nil
                observers.append(Self.takeObservers(of: job, in: &state))
                removedJobs.append(job)
            }
            state.queued = 0
            state.queuedBytes = 0
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
            state.closed = true
            var jobs: [StoredJob] = []
            while !state.queue.isEmpty {
                let job = state.queue.removeFirst()
                if job.status == .inQueue, !job.stopped { jobs.append(job) }
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
                if state.running == 0 { return true }
                state.drainWaiters.append(continuation)
                return false
            }
            if done { continuation.resume() }
        }
    }

    private func deliverWebhook(_ job: StoredJob, now: ContinuousClock.Instant) {
        guard let url = job.request.webhook else { return }
        let payload = job.report(now: now, workerID: workerID).webhookPayload(input: job.request.input, webhook: url)
        let delays = limits.webhookRetryDelays
        let timeout = limits.webhookTimeout
        let client = context.httpClient
        let logger = JobLog(base: self.logger, jobID: job.id).logger
        Task {
            await Webhook.deliver(payload, to: url, retryDelays: delays, timeout: timeout, client: client, logger: logger)
        }
    }
}


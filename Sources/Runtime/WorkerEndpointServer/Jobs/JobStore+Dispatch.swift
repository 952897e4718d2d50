import EndpointAPI
import Synchronization
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
            isSync: sync, retained: retained, now: JobTime(now()), requestBytes: requestBytes)
        let admitted = state.withLock { state -> [StoredJob]? in
            guard case .enqueue = state.machine.submit(job.lifecycle) else { return nil }
            if let events { addListener(events, to: job, in: &state) }
            state.jobs.insert(job)
            state.queue.append(job)
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

    /// Starts queued jobs while slots are free.
    func dispatch() {
        let started = state.withLock { state in startQueued(in: &state) }
        start(started, immediately: nil)
    }

    /// Takes the queued jobs that free slots allow (under the lock); their tasks are made after it.
    private func startQueued(in state: inout State) -> [StoredJob] {
        let limit =
            fixedConcurrency
            ?? context.options.concurrency.evaluate(current: state.machine.concurrency, environment: context.configuration.concurrency)
        var started: [StoredJob] = []
        guard state.machine.mayStart(concurrency: limit), !state.queue.isEmpty else {
            publishQueueDepth(&state)
            return started
        }
        let now = JobTime(self.now())
        while state.machine.hasFreeSlot, !state.queue.isEmpty {
            let job = state.queue.removeFirst()
            // Cancelled, or past its TTL, while queued: it left the queue's counts then.
            guard case .run = state.machine.start(&job.lifecycle, now: now) else { continue }
            started.append(job)
        }
        publishQueueDepth(&state)
        return started
    }

    /// The queue-depth gauge, set when the depth changed since it was last set. Under the lock,
    /// so values are set in order.
    func publishQueueDepth(_ state: inout State) {
        if let depth = state.machine.queueDepthToPublish() { metrics.queued(depth) }
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
            let now = JobTime(self.now())
            let (cancel, report) = state.withLock { state -> (Bool, JobStatusReport?) in
                switch state.machine.launched(job.lifecycle) {
                case .finished:
                    return (false, job === first ? job.report(now: now, workerID: workerID) : nil)
                case .cancel:
                    return (true, nil)
                case .keep:
                    job.task = task
                    if job === first { state.active[job.key] = job }
                    return (false, nil)
                }
            }
            // Expired between the start and here: the janitor found no task to cancel.
            if cancel { task.cancel() }
            if report != nil { finished = report }
        }
        return finished
    }

    private func execute(_ job: StoredJob) async {
        _ = await runner(for: job).run(
            Job(id: job.id, input: job.request.input, extra: job.request.extra), executionTimeout: job.executionTimeout
        ) { job.stopped }
        let (drained, next) = state.withLock { state -> ([CheckedContinuation<Void, Never>], [StoredJob]) in
            state.machine.runnerReturned()
            let next = startQueued(in: &state)
            guard state.machine.isIdle else { return ([], next) }
            defer { state.drainWaiters = [] }
            return (state.drainWaiters, next)
        }
        for waiter in drained { waiter.resume() }
        start(next, immediately: nil)
    }
}

import EndpointAPI
import Logging
import Synchronization
import WorkerJSON
import WorkerRuntime

extension JobStore {
    // MARK: Results from the runner

    func recordProgress(_ job: StoredJob, _ value: JSONValue) {
        let listeners = state.withLock { state -> [AsyncStream<JobEvent>.Continuation] in
            guard case .record = state.machine.progress(job.lifecycle) else { return [] }
            job.progress = value
            return Array(job.listeners.values)
        }
        for listener in listeners { listener.yield(.progress(value)) }
    }

    func recordChunk(_ job: StoredJob, _ chunk: JSONValue, bytes: Int) {
        let listeners = state.withLock { state -> [AsyncStream<JobEvent>.Continuation] in
            guard case .record = state.machine.chunk(&job.lifecycle, bytes: bytes) else { return [] }
            job.unpolledChunks.append(chunk)
            job.allChunks.append(chunk)
            return Array(job.listeners.values)
        }
        for listener in listeners { listener.yield(.chunk(chunk)) }
    }

    /// The runner's final body: COMPLETED with its output, or FAILED with its error.
    func recordResult(_ job: StoredJob, _ body: JSONValue, bytes: Int, isStream: Bool) {
        let now = JobTime(self.now())
        var evicted: [StoredJob] = []
        defer { evicted.removeAll() }
        let observers = state.withLock { state -> Observers? in
            var output = body["output"]
            let error = body["error"]
            let action = state.machine.result(
                &job.lifecycle, failed: error != nil, bytes: bytes, streamWithoutOutput: isStream && output == [], now: now)
            guard case .finish(let retention, let outputFromChunks) = action else { return nil }
            if outputFromChunks { output = .array(job.allChunks) }
            job.output = output
            if let error { job.error = ResultBody.errorText(error) }
            evicted = settle(job, retention, in: &state)
            return Self.takeObservers(of: job, in: &state)
        }
        guard let observers else { return }
        // The job's input goes before anyone hears it is final; its webhook keeps a copy.
        let input = releaseInput(job)
        notify(observers, job.report(now: now, workerID: workerID))
        deliverWebhook(job, input: input, now: now)
    }

    /// A final job keeps its input only while it may run again (`/retry` takes FAILED and
    /// TIMED_OUT jobs) and until its webhook has it: a COMPLETED or CANCELLED job's input is let go
    /// then, not at the end of its retention. A /runsync of 20 MB of vectors otherwise held its
    /// parsed input for the minute after it answered: a bulk load of 100,000 × 384 vectors grew
    /// a worker to 1.3 GB. Returns the input for the job's webhook (`.null` when it has none).
    func releaseInput(_ job: StoredJob) -> JSONValue {
        let forWebhook = job.request.webhook == nil ? JSONValue.null : job.request.input
        let input = state.withLock { _ -> JSONValue? in
            let status = job.lifecycle.status
            guard status == .completed || status == .cancelled, job.request.input != .null else { return nil }
            defer { job.request.input = .null }
            return job.request.input
        }
        guard let input else { return forWebhook }
        // Freed here, after the lock; large ones leave free pages the heap keeps unless trimmed.
        _ = consume input
        if job.lifecycle.inputBytes >= 1 << 20 { HeapTrim.shared.released(job.lifecycle.inputBytes) }
        return forWebhook
    }

    // MARK: Carrying out a job's end

    /// A job became final: its run-time state goes, the janitor stops watching it, and it joins
    /// its retention list, the oldest results being forgotten past the list's cap or the byte
    /// budget as the machine says (the janitor handles time), or it is forgotten at once. The
    /// forgotten jobs are returned so the caller releases them after the lock.
    func settle(_ job: StoredJob, _ retention: JobRetention.Decision, in state: inout State) -> [StoredJob] {
        job.progress = nil
        job.task = nil
        job.allChunks = []
        state.active[job.key] = nil
        guard case .keep(let list) = retention else {
            // Its listener has the final report; nobody else can ask for it.
            state.jobs.remove(job)
            return []
        }
        switch list {
        case .run: state.expiries.append(job)
        case .sync: state.syncExpiries.append(job)
        }
        var evicted: [StoredJob] = []
        while let oldestOf = state.machine.nextEviction(
            after: job.lifecycle,
            oldestFinish: { which in (which == .sync ? state.syncExpiries.first : state.expiries.first)?.lifecycle.finishedAt })
        {
            evicted.append(forgetOldest(oldestOf, in: &state))
        }
        return evicted
    }

    /// Removes the oldest finished job of one retention list from the store.
    func forgetOldest(_ list: JobRetention.List, in state: inout State) -> StoredJob {
        let oldest = list == .sync ? state.syncExpiries.removeFirst() : state.expiries.removeFirst()
        state.machine.forget(oldest.lifecycle)
        // A retried job has a newer object under its id (queued or running again): that stays.
        state.jobs.remove(oldest)
        return oldest
    }

    /// `input`: the job's, as `releaseInput` kept it for the webhook.
    func deliverWebhook(_ job: StoredJob, input: JSONValue, now: JobTime) {
        guard let url = job.request.webhook else { return }
        let payload = job.report(now: now, workerID: workerID).webhookPayload(input: input, webhook: url)
        let delays = limits.webhookRetryDelays
        let timeout = limits.webhookTimeout
        let client = context.httpClient
        let logger = JobLog(base: self.logger, jobID: job.id).logger
        Task {
            await Webhook.deliver(payload, to: url, retryDelays: delays, timeout: timeout, client: client, logger: logger)
        }
    }
}

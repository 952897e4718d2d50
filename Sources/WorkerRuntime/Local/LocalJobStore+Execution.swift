#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Logging
import Synchronization

extension LocalJobStore {
    /// Validates a /run or /runsync body and queues the job.
    func submit(_ body: JSONValue, sync: Bool) throws(LocalAPIError) -> LocalJob {
        guard case .object(let request) = body else {
            throw .badRequest("the request body must be a JSON object with an \"input\" key, got \(body.typeName)")
        }
        guard let input = request["input"] else {
            throw .badRequest("the request body has no \"input\" key: send {\"input\": …}")
        }
        var webhook: String?
        if let value = request["webhook"], value != .null {
            guard let url = value.stringValue, url.hasPrefix("http://") || url.hasPrefix("https://") else {
                throw .badRequest("\"webhook\" must be an http:// or https:// URL")
            }
            webhook = url
        }
        var executionTimeout = settings.defaultExecutionTimeout
        var ttl = settings.defaultTTL
        if let policy = request["policy"], policy != .null {
            guard case .object(let fields) = policy else { throw .badRequest("\"policy\" must be an object") }
            executionTimeout = try Self.milliseconds(fields["executionTimeout"], "policy.executionTimeout") ?? executionTimeout
            ttl = try Self.milliseconds(fields["ttl"], "policy.ttl") ?? ttl
        }
        let id = (sync ? "sync-" : "") + UUID().uuidString.lowercased() + "-u1"
        let job = LocalJob(
            id: id, request: request, input: input, webhook: webhook, executionTimeout: executionTimeout, ttl: ttl,
            isSync: sync, createdAt: .now)
        state.withLock { state in
            state.jobs[id] = job
            state.active.insert(id)
            state.queue.append(id)
            state.queued += 1
        }
        dispatch()
        return job
    }

    private static func milliseconds(_ value: JSONValue?, _ name: String) throws(LocalAPIError) -> Duration? {
        guard let value, value != .null else { return nil }
        let week = 7 * 24 * 3600 * 1000
        guard let ms = value.intValue, ms > 0, ms <= week else {
            throw .badRequest("\(name) must be a whole number of milliseconds from 1 to \(week)")
        }
        return .milliseconds(ms)
    }

    /// Starts queued jobs while slots are free.
    func dispatch() {
        let now = ContinuousClock.now
        state.withLock { state in
            let limit = options.concurrency.evaluate(current: state.concurrency, environment: configuration.concurrency)
            state.concurrency = limit
            while state.running < limit, !state.queue.isEmpty {
                let id = state.queue.removeFirst()
                guard var job = state.jobs[id], job.status == .inQueue else { continue }
                state.queued -= 1
                job.status = .inProgress
                job.startedAt = now
                state.running += 1
                let snapshot = job
                job.task = Task { await self.execute(snapshot) }
                state.jobs[id] = job
            }
            metrics.update(queued: state.queued, running: state.running)
        }
    }

    private func execute(_ job: LocalJob) async {
        let id = job.id
        var extra = job.request
        extra["input"] = nil
        let runner = JobRunner(
            handler: handler, sink: LocalResultSink(store: self, jobID: id), options: options,
            configuration: configuration, logger: logger)
        _ = await runner.run(Job(id: id, input: job.input, extra: extra)) { [self] in
            state.withLock { $0.jobs[id]?.stopped ?? true }
        }
        state.withLock { $0.running -= 1 }
        dispatch()
    }

    // MARK: Results from the runner

    func recordProgress(_ id: String, _ value: JSONValue) {
        state.withLock { state in
            guard var job = state.jobs[id], !job.stopped, !job.status.isFinal else { return }
            job.progress = value
            state.jobs[id] = job
        }
    }

    func recordChunk(_ id: String, _ chunk: JSONValue) {
        let listeners = state.withLock { state -> [Int: AsyncStream<Event>.Continuation]? in
            guard var job = state.jobs[id], !job.stopped, !job.status.isFinal else { return nil }
            job.unpolledChunks.append(chunk)
            job.allChunks.append(chunk)
            state.jobs[id] = job
            return state.listeners[id]
        }
        notify(listeners, .chunk(chunk), finish: false)
    }

    /// The runner's final body: COMPLETED with its output, or FAILED with its error.
    func recordResult(_ id: String, _ body: JSONValue, isStream: Bool) {
        let now = ContinuousClock.now
        let finished = state.withLock { state -> (LocalJob, [Int: AsyncStream<Event>.Continuation]?, [Waiter])? in
            guard var job = state.jobs[id], !job.stopped, !job.status.isFinal else { return nil }
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
        notify(listeners, .finished(job), finish: true)
        for waiter in waiters { waiter.continuation.resume() }
        metrics.finished(job)
        deliverWebhook(job)
    }

    private func finish(_ job: inout LocalJob, in state: inout State, now: ContinuousClock.Instant) {
        job.finishedAt = now
        job.progress = nil
        job.task = nil
        job.allChunks = []
        state.jobs[job.id] = job
        state.active.remove(job.id)
        if job.isSync {
            state.syncExpiries.append(Expiry(deadline: now + settings.syncRetention, id: job.id, finished: now))
        } else {
            state.expiries.append(Expiry(deadline: now + settings.retention, id: job.id, finished: now))
        }
    }

    // MARK: Control

    /// Cancels (or times out) a job: a queued job never runs, a running one has its task cancelled;
    /// nothing it produces afterwards is kept.
    @discardableResult
    func stop(_ id: String, as status: JobStatus, error: String? = nil) -> JSONValue? {
        let now = ContinuousClock.now
        let stopped = state.withLock { state -> (LocalJob, Task<Void, Never>?, [Int: AsyncStream<Event>.Continuation]?, [Waiter], Bool)? in
            guard var job = state.jobs[id] else { return nil }
            guard !job.status.isFinal else { return (job, nil, nil, [], false) }
            if job.status == .inQueue { state.queued -= 1 }
            let task = job.task
            job.status = status
            job.stopped = true
            job.error = error
            if status == .timedOut { state.counters.failed += 1 }
            finish(&job, in: &state, now: now)
            return (job, task, state.listeners.removeValue(forKey: id), state.waiters.removeValue(forKey: id).map { Array($0.values) } ?? [], true)
        }
        guard let (job, task, listeners, waiters, changed) = stopped else { return nil }
        if changed {
            task?.cancel()
            notify(listeners, .finished(job), finish: true)
            for waiter in waiters { waiter.continuation.resume() }
            metrics.finished(job)
            if status == .timedOut { deliverWebhook(job) }
            if job.startedAt == nil { dispatch() }
        }
        return ["id": .string(id), "status": .string(job.status.rawValue)]
    }

    /// Queues a FAILED or TIMED_OUT job again under the same id, its old output removed.
    func retry(_ id: String) throws(LocalAPIError) -> JSONValue {
        let result = state.withLock { state -> Result<Void, LocalAPIError> in
            guard let job = state.jobs[id] else { return .failure(.notFound("job \(id) not found (unknown, or expired)")) }
            guard job.status == .failed || job.status == .timedOut else {
                return .failure(.badRequest("only FAILED or TIMED_OUT jobs can be retried; job \(id) is \(job.status.rawValue)"))
            }
            state.jobs[id] = LocalJob(
                id: id, request: job.request, input: job.input, webhook: job.webhook,
                executionTimeout: job.executionTimeout, ttl: job.ttl, isSync: job.isSync, createdAt: .now)
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
        let removed = state.withLock { state -> Int in
            var removed = 0
            while !state.queue.isEmpty {
                let id = state.queue.removeFirst()
                guard state.jobs[id]?.status == .inQueue else { continue }
                state.jobs[id] = nil
                state.active.remove(id)
                for waiter in state.waiters.removeValue(forKey: id)?.values ?? [:].values { waiter.continuation.resume() }
                if let listeners = state.listeners.removeValue(forKey: id) {
                    for continuation in listeners.values { continuation.finish() }
                }
                removed += 1
            }
            state.queued = 0
            metrics.update(queued: 0, running: state.running)
            return removed
        }
        return ["removed": .integer(Int64(removed)), "status": "completed"]
    }

    private func deliverWebhook(_ job: LocalJob) {
        guard let url = job.webhook else { return }
        let payload = job.webhookPayload(now: .now, workerID: workerID)
        let delays = settings.webhookRetryDelays
        let timeout = settings.webhookTimeout
        var logger = self.logger
        logger[metadataKey: "job-id"] = "\(job.id)"
        Task { [logger] in await Webhook.deliver(payload, to: url, retryDelays: delays, timeout: timeout, logger: logger) }
    }
}

/// Where the runner's output goes in the local server: into the job store.
struct LocalResultSink: ResultSink {
    let store: LocalJobStore
    let jobID: String

    func postResult(_ body: ResultPayload, jobID: String, isStream: Bool) async -> DeliveryOutcome {
        if body.json["status"] == "IN_PROGRESS", !isStream {
            store.recordProgress(self.jobID, body.json["output"] ?? .null)
        } else {
            store.recordResult(self.jobID, body.json, isStream: isStream)
        }
        return .delivered
    }

    func postChunk(_ body: ResultPayload, jobID: String) async -> DeliveryOutcome {
        store.recordChunk(self.jobID, body.json["output"] ?? .null)
        return .delivered
    }
}

/// Delivers the platform's webhook: POST the envelope; a non-2xx answer or a failure is retried.
enum Webhook {
    static func deliver(
        _ payload: JSONValue, to url: String, retryDelays: [Duration], timeout: Duration, logger: Logger,
        client: CurlHTTPClient = .shared
    ) async {
        guard let request = try? HTTPClientRequest.json(url: url, body: payload, timeout: timeout) else { return }
        for attempt in 0...retryDelays.count {
            do {
                let response = try await client.execute(request)
                if (200..<300).contains(response.status) {
                    logger.debug("Webhook delivered to \(url)")
                    return
                }
                logger.warning("Webhook to \(url) answered HTTP \(response.status) (attempt \(attempt + 1))")
            } catch {
                logger.warning("Webhook to \(url) failed (attempt \(attempt + 1)): \(error)")
            }
            if attempt < retryDelays.count { try? await Task.sleep(for: retryDelays[attempt]) }
        }
        logger.error("Webhook to \(url) was not delivered after \(retryDelays.count + 1) attempts")
    }
}

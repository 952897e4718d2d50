import EndpointAPI
import Logging
import RedisClient
import WorkerEndpointServer
import WorkerJSON
import WorkerRuntime

/// The endpoint API of a fleet gateway: every job in Redis, run by whichever worker of the fleet
/// takes it. A job gets its id here and is answered (`/run`) only once the submit script stored
/// it; with Redis out, a 503 with `Retry-After` instead.
struct FleetBackend: JobBackend {
    let store: FleetStore
    let events: FleetEvents
    let limits: ServerLimits
    let ids = JobIDs()
    let logger: Logger
    /// This gateway's own worker, unless `--gateway-only`: it runs a job as it is queued when it
    /// has a free slot (one hop fewer than a worker taking it from the stream).
    var local: FleetJobSource? = nil

    // MARK: Submitting

    func submit(_ request: JobRequest, sync: Bool, requestBytes: Int?, idempotencyKey: String?) async throws(APIError)
        -> (id: String, finished: JobStatusReport?)
    {
        guard sync else { return (try await enqueue(request, sync: false, requestBytes: requestBytes, idempotencyKey: idempotencyKey), nil) }
        // A /runsync waits next: listening before the job exists saves the wait a read.
        let id = ids.next(sync: true)
        events.registerPending(id)
        do {
            let (_, finished) = try await enqueue(
                request, sync: true, requestBytes: requestBytes, idempotencyKey: idempotencyKey, id: id, awaitHere: true)
            if finished != nil { events.dropPending(id) }
            return (id, finished)
        } catch {
            events.dropPending(id)
            throw error
        }
    }

    func submitListening(_ request: JobRequest, sync: Bool, retained: Bool, newestOnly: Bool) async throws(APIError)
        -> (id: String, events: AsyncStream<JobEvent>)
    {
        let id = ids.next(sync: sync)
        // Listening before the job exists: its first chunk cannot come before the listener.
        let stream = listenUnchecked(id, newestOnly: newestOnly)
        do {
            _ = try await enqueue(request, sync: sync, requestBytes: nil, idempotencyKey: nil, id: id)
        } catch {
            stream.cancel()
            throw error
        }
        return (id, stream.events)
    }

    private func enqueue(
        _ request: JobRequest, sync: Bool, requestBytes: Int?, idempotencyKey: String?, id given: String? = nil
    ) async throws(APIError) -> String {
        try await enqueue(request, sync: sync, requestBytes: requestBytes, idempotencyKey: idempotencyKey, id: given, awaitHere: false).id
    }

    /// Queues the job; with `awaitHere`, when this gateway started the job itself, runs it on the
    /// caller's task and answers its final report too (a /runsync's whole path in one process).
    private func enqueue(
        _ request: JobRequest, sync: Bool, requestBytes: Int?, idempotencyKey: String?, id given: String?, awaitHere: Bool
    ) async throws(APIError) -> (id: String, finished: JobStatusReport?) {
        let id = given ?? ids.next(sync: sync)
        var job = request.extra
        job["id"] = .string(id)
        job["input"] = request.input
        let bytes: [UInt8]
        do {
            bytes = try JSONValue.object(job).serialized()
        } catch {
            throw .badRequest("the job cannot be stored: \(error)")
        }
        let local = self.local.flatMap { $0.reserveDirect() ? $0 : nil }
        let outcome: FleetStore.Submitted
        do {
            let (submitted, started) = try await call("queue the job") {
                try await store.submit(
                    id: id, job: bytes, inputBytes: requestBytes ?? bytes.count, sync: sync,
                    ttl: request.policy.ttl ?? limits.defaultTTL, retention: sync ? limits.syncRetention : limits.retention,
                    executionTimeout: request.policy.executionTimeout ?? limits.defaultExecutionTimeout,
                    queueLimit: limits.queuedInputBytes, idempotencyKey: idempotencyKey, startingFor: local?.consumer)
            }
            outcome = submitted
            if let local {
                if started.isEmpty {
                    local.unreserveDirect()
                } else if awaitHere {
                    return (id, await local.runDirect(started, awaiting: id))
                } else {
                    local.announce(started)
                    Task { await local.runDirect(started) }
                }
            }
        } catch {
            local?.unreserveDirect()
            throw error
        }
        switch outcome {
        case .queued: return (id, nil)
        case .known(let known): return (known, nil)
        case .full(let queued):
            throw .tooManyRequests(
                "the fleet's queue holds \(queued) bytes of input; this job's \(requestBytes ?? bytes.count) would pass the budget of "
                    + "\(limits.queuedInputBytes) bytes (QUEUED_INPUT_MB); retry once some have started", retryAfter: 1)
        }
    }

    // MARK: Reading

    func report(_ id: String) async throws(APIError) -> JobStatusReport? {
        if let completed = events.recentlyCompleted(id) { return completed }
        return try await call("read the job") { try await store.report(id) }
    }

    func poll(_ id: String) async throws(APIError) -> JSONValue? {
        guard let polled = try await call("read the job's stream", { try await store.poll(id) }) else { return nil }
        var body: [String: JSONValue] = [
            "id": .string(id), "status": .string(polled.status.rawValue), "stream": .array(polled.chunks.map { ["output": $0] }),
        ]
        if let error = polled.error { body["error"] = .string(error) }
        return .object(body)
    }

    func waitForFinal(_ id: String, timeout: Duration) async -> JobStatusReport? {
        let deadline = ContinuousClock.now + timeout
        let ticket: FleetEvents.Ticket
        if let pending = events.takePending(id) {
            ticket = pending
            // Registered before the job was queued: nothing can have been missed, so wait first.
            if case .final(let report) = await events.next(ticket, limit: timeout) {
                events.cancel(ticket)
                return report
            }
        } else {
            ticket = events.register(id)
        }
        defer { events.cancel(ticket) }
        // Both after the ticket, so an end that comes meanwhile is not missed: a job seen
        // completing lately needs no read, and one this process runs ends here (`deliverLocal`).
        if let completed = events.recentlyCompleted(id) { return completed }
        if local?.holds(id) == true, case .final(let report) = await events.next(ticket, limit: timeout) { return report }
        while true {
            // A read that fails (Redis out) is tried again at the next wake, until the deadline.
            let report: JobStatusReport?
            do {
                report = try await store.report(id)
                // Unknown (or expired) by Redis's own answer: nothing to wait for.
                guard report != nil else { return nil }
            } catch {
                report = nil
            }
            if let report, report.status.isFinal { return report }
            let left = deadline - ContinuousClock.now
            if left <= .zero || Task.isCancelled {
                if let report { return report }
                return try? await store.report(id)
            }
            if case .final(let report) = await events.next(ticket, limit: left) { return report }
        }
    }

    func listen(_ id: String) async -> AsyncStream<JobEvent>? {
        guard (try? await store.report(id)) != nil else { return nil }
        return listenUnchecked(id, newestOnly: false).events
    }

    /// The job's chunks, progress and final report as events, read from Redis as messages say
    /// the record changed; one task per listener, ended when the consumer goes away.
    private func listenUnchecked(_ id: String, newestOnly: Bool) -> (events: AsyncStream<JobEvent>, cancel: @Sendable () -> Void) {
        let (stream, continuation) = AsyncStream<JobEvent>.makeStream(bufferingPolicy: newestOnly ? .bufferingNewest(64) : .unbounded)
        let ticket = events.register(id)
        let store = self.store
        let events = self.events
        let task = Task {
            defer {
                events.cancel(ticket)
                continuation.finish()
            }
            var sent = 0
            var lastProgress: JSONValue?
            var missing = 0
            while !Task.isCancelled {
                if let chunks = try? await store.chunks(id, from: sent), !chunks.isEmpty {
                    for chunk in chunks { continuation.yield(.chunk(chunk)) }
                    sent += chunks.count
                }
                let read: JobStatusReport??
                do { read = .some(try await store.report(id)) } catch { read = nil }
                switch read {
                case .some(.some(let report)):
                    missing = 0
                    if report.status.isFinal {
                        continuation.yield(.finished(report))
                        return
                    }
                    if let progress = report.output, progress != lastProgress, report.status == .inProgress {
                        lastProgress = progress
                        continuation.yield(.progress(progress))
                    }
                case .some(.none):
                    // Not stored yet (the listener comes first) or gone (purged, expired).
                    missing += 1
                    if missing > 30 { return }
                case .none:
                    break
                }
                _ = await events.next(ticket)
            }
        }
        continuation.onTermination = { _ in task.cancel() }
        return (stream, { task.cancel() })
    }

    // MARK: Control

    func stop(_ id: String, as status: JobStatus, error: String?) async throws(APIError) -> JSONValue? {
        guard let after = try await call("stop the job", { try await store.stop(id, as: status, error: error) }) else { return nil }
        return ["id": .string(id), "status": .string(after.rawValue)]
    }

    func retry(_ id: String) async throws(APIError) -> JSONValue {
        switch try await call("queue the job again", { try await store.retry(id, ttl: limits.defaultTTL) }) {
        case .queued: return ["id": .string(id), "status": "IN_QUEUE"]
        case .unknown: throw .notFound("job \(id) not found: unknown, or expired (TTL or result retention)")
        case .refused(let status):
            throw .badRequest("job \(id) is \(status.rawValue); only FAILED or TIMED_OUT jobs can be retried")
        }
    }

    func purgeQueue() async throws(APIError) -> JSONValue {
        let removed = try await call("purge the queue") { try await store.purgeQueue() }
        return ["removed": .integer(Int64(removed)), "status": "completed"]
    }

    func health() async throws(APIError) -> JSONValue {
        try await call("read the fleet's health") { try await store.health() }
    }

    /// A step on Redis, its failure as the API answers it: Redis out → 503 with `Retry-After`,
    /// a refused command or a damaged record → 500 naming it.
    private func call<T>(_ step: String, _ body: () async throws -> T) async throws(APIError) -> T {
        do {
            return try await body()
        } catch {
            throw failure(error, step: step)
        }
    }

    /// Not generic, so each step's `call` stays small.
    private func failure(_ error: any Error, step: String) -> APIError {
        let described = FleetError.describe(error)
        guard let error = error as? RedisError else {
            logger.error("Fleet: could not \(step): \(described)")
            return .internalError("the fleet could not \(step): \(described)")
        }
        if error.isTimeout && step == "queue the job" {
            // The script may yet run once Redis catches up: the job may exist.
            logger.warning("Fleet: could not \(step): \(described)")
            return .unavailable(
                "the fleet's Redis did not answer in time, so the job may or may not have been queued: "
                    + "\(described); send /run with an Idempotency-Key to retry without running it twice", retryAfter: 1)
        }
        if error.isUnavailable {
            logger.warning("Fleet: could not \(step): \(described)")
            return .unavailable("the fleet's Redis is unavailable, so this gateway cannot \(step): \(described)", retryAfter: 1)
        }
        if error.isAuthentication {
            logger.warning("Fleet: could not \(step): \(error)")
            return .unavailable(
                "the fleet's Redis at \(error.server) refused this gateway's authentication, so it cannot \(step): \(error.reason) "
                    + "(check the user and password in QUEUE_URL)", retryAfter: 5)
        }
        if !error.isServerError {
            logger.warning("Fleet: could not \(step): \(described)")
            return .unavailable("the fleet's Redis refused this gateway, so it cannot \(step): \(described)", retryAfter: 5)
        }
        if error.reason.hasPrefix("OOM") {
            logger.error("Fleet: could not \(step): \(error)")
            return .unavailable("the fleet's Redis is full (maxmemory), so this gateway cannot \(step): \(error.reason)", retryAfter: 5)
        }
        logger.error("Fleet: could not \(step): \(described)")
        return .internalError("the fleet could not \(step): \(described)")
    }
}

import CurlHTTP
import EndpointAPI
import Logging
import RedisClient
import Synchronization
import WorkerEndpointServer
import WorkerJSON
import WorkerRuntime

/// The fleet as the queue loop's platform (`JobSource`): jobs come from the endpoint's stream,
/// results go to the job records, fenced by the run's attempt. Beside the loop it keeps what a
/// platform would: the leases of the jobs it holds (renewed every heartbeat), their execution
/// timeouts, and the cancel channel; a job this worker no longer holds (cancelled, timed out, or
/// started again elsewhere after its lease ran out) is stopped through `pollStopRequests`.
final class FleetJobSource: JobSource {
    struct Held: Sendable {
        let attempt: Int
        let deadline: ContinuousClock.Instant
        let webhook: String?
        let input: JSONValue
        /// Its final result is being written: a renewal that finds the job final meanwhile is
        /// this worker's own doing, not a loss.
        var finishing = false
    }

    private struct State {
        var held: [String: Held] = [:]
        /// Jobs the submit step started here, announced before their task holds them.
        var arriving: Set<String> = []
        var lastReclaim: ContinuousClock.Instant?
        /// The last look found jobs: look again without blocking first (one round trip, not two).
        var busy = false
        var blocking: RedisBlockingConnection?
        /// Jobs this gateway started as it queued them, run outside the loop, by id.
        var direct: [String: Task<Void, Never>] = [:]
        /// Slots promised to submissions under way (`reserveDirect`).
        var reserved = 0
        var accepting = true
        var drainWaiters: [CheckedContinuation<Void, Never>] = []
        /// Reports of direct jobs whose submitter waits for them in process (a /runsync), by id:
        /// nil until recorded.
        var awaited: [String: JobStatusReport?] = [:]
    }

    let store: FleetStore
    let consumer: String
    let context: WorkerContext
    let limits: ServerLimits
    private let state = Mutex(State())
    private let stops: AsyncStream<[String]>
    private let stopContinuation: AsyncStream<[String]>.Continuation
    private var logger: Logger { context.logger }

    /// Told of each final result this process recorded, with its report: a gateway's own waiters
    /// answer without the round trip through Pub/Sub.
    let recorded: (@Sendable (String, JobStatusReport) -> Void)?

    init(
        store: FleetStore, context: WorkerContext, limits: ServerLimits = ServerLimits(),
        recorded: (@Sendable (String, JobStatusReport) -> Void)? = nil
    ) {
        self.store = store
        self.context = context
        self.limits = limits
        self.recorded = recorded
        self.consumer = context.configuration.workerID
        (stops, stopContinuation) = AsyncStream<[String]>.makeStream()
    }

    private var concurrency: Int { max(1, context.configuration.concurrency) }

    var settings: FleetSettings { store.settings }
    var heldCount: Int { state.withLock { $0.held.count } }

    /// Whether this process runs `id` now (its end will be delivered here).
    func holds(_ id: String) -> Bool { state.withLock { $0.held[id] != nil || $0.arriving.contains(id) } }

    /// Marks jobs the submit step started as this process's before their task takes them, so a
    /// status wait that comes first waits for their end here instead of reading Redis.
    func announce(_ started: [FleetStore.Started]) {
        state.withLock { state in
            for job in started { state.arriving.insert(job.id) }
        }
    }

    // MARK: Taking

    func takeJobs(count requested: Int, jobInProgress: Bool) async -> JobTakeOutcome {
        // Slots taken by jobs this gateway started itself are not the loop's to fill.
        let count = requested - state.withLock { $0.direct.count + $0.reserved }
        guard count > 0 else {
            try? await Task.sleep(for: .milliseconds(20))
            return .noJob
        }
        do {
            let now = ContinuousClock.now
            let (reclaim, busy) = state.withLock { state -> (Bool, Bool) in
                // Every second: a dead worker's job runs again within its lease and a second.
                guard state.lastReclaim.map({ now - $0 >= .seconds(1) }) ?? true else { return (false, state.busy) }
                state.lastReclaim = now
                return (true, state.busy)
            }
            if reclaim || busy {
                let started = try await store.take(consumer: consumer, count: count, reclaim: reclaim)
                if !started.isEmpty { return .jobs(await accept(started)) }
                state.withLock { $0.busy = false }
            }
            let connection = try await blockingConnection()
            let entries: [RedisStreamEntry]
            do {
                entries = try await connection.xreadgroup(
                    store.keys.queue, group: FleetKeys.group, consumer: consumer, count: count, block: .seconds(1))
            } catch let error as RedisError where error.isServerError && error.reason.contains("NOGROUP") {
                try await FleetRedis.makeGroup(store.commands(), keys: store.keys)
                return .noJob
            } catch let error as RedisError where error.isServerError && error.reason.hasPrefix("MOVED") {
                // The endpoint's slot moved to another master: read there from now on.
                dropBlockingConnection()
                store.redis.forgetConnector()
                return .noJob
            }
            guard !entries.isEmpty else { return .noJob }
            state.withLock { $0.busy = true }
            let started = try await store.take(consumer: consumer, count: count, reclaim: false, entries: entries)
            let jobs = await accept(started)
            return jobs.isEmpty ? .noJob : .jobs(jobs)
        } catch {
            if Task.isCancelled { return .noJob }
            dropBlockingConnection()
            return .failed("the fleet's Redis at \(store.redis.server): \(FleetError.describe(error))")
        }
    }

    /// The started jobs as the loop takes them; a record that is not a job fails here, naming it.
    private func accept(_ started: [FleetStore.Started]) async -> [JSONValue] {
        var jobs: [JSONValue] = []
        jobs.reserveCapacity(started.count)
        for job in started {
            defer { _ = state.withLock { $0.arriving.remove(job.id) } }
            let parsed: JSONValue
            do {
                parsed = try JSONValue.parse(job.job)
                guard parsed["input"] != nil else { throw FleetError.damagedRecord(store.keys.job(job.id), "its request has no \"input\"") }
            } catch {
                let message =
                    (error as? FleetError)?.message
                    ?? "the fleet's record \(store.keys.job(job.id)) is damaged: its request is not JSON (\(error)); it was not written by a fleet gateway"
                logger.error("Fleet: job \(job.id): \(message)")
                let result = (try? JSONValue.object(["error": .string(message)]).serialized()) ?? []
                _ = try? await store.finish(job.id, attempt: job.attempt, status: .failed, result: result)
                continue
            }
            var object = parsed
            if case .object(var fields) = parsed, fields["id"]?.stringValue != job.id {
                fields["id"] = .string(job.id)
                object = .object(fields)
            }
            let timeout = parsed["policy"]?["executionTimeout"]?.intValue.flatMap { $0 > 0 ? Duration.milliseconds($0) : nil }
                ?? limits.defaultExecutionTimeout
            let held = Held(attempt: job.attempt, deadline: .now + timeout, webhook: parsed["webhook"]?.stringValue, input: parsed["input"] ?? .null)
            state.withLock { $0.held[job.id] = held }
            if job.attempt > 1 { logger.info("Fleet: job \(job.id) starts again (attempt \(job.attempt)): its previous worker's lease ran out") }
            jobs.append(object)
        }
        return jobs
    }

    private func blockingConnection() async throws -> RedisBlockingConnection {
        if let existing = state.withLock({ $0.blocking }) { return existing }
        let made = try await store.redis.connector().blockingConnection()
        return state.withLock { state in
            if let existing = state.blocking { return existing }
            state.blocking = made
            return made
        }
    }

    private func dropBlockingConnection() {
        let old = state.withLock { state -> RedisBlockingConnection? in
            defer { state.blocking = nil }
            return state.blocking
        }
        old?.close()
    }

    // MARK: Stopping

    func pollStopRequests() async -> StopPollOutcome? {
        var iterator = stops.makeAsyncIterator()
        guard let ids = await iterator.next() else { return .nothing }
        return .stop(ids)
    }

    /// Lets go of jobs this worker no longer holds and stops their tasks (not those whose result
    /// it is writing).
    private func release(_ ids: [String], reason: String) {
        var directTasks: [Task<Void, Never>] = []
        let released = state.withLock { state in
            ids.filter { id in
                guard let held = state.held[id], !held.finishing else { return false }
                state.held[id] = nil
                if let task = state.direct[id] { directTasks.append(task) }
                return true
            }
        }
        for task in directTasks { task.cancel() }
        guard !released.isEmpty else { return }
        for id in released { JobLog(base: logger, jobID: id).logger.info("Fleet: stopping the job: \(reason)") }
        stopContinuation.yield(released)
    }

    /// Until cancelled: renews leases every heartbeat, enforces execution timeouts, and follows
    /// the cancel channel.
    func keepLeases() async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.followCancels() }
            group.addTask { await self.renewLoop() }
            group.addTask { await self.timeoutLoop() }
            await group.waitForAll()
        }
    }

    private func renewLoop() async {
        while !Task.isCancelled {
            let held = state.withLock { $0.held.map { (id: $0.key, attempt: $0.value.attempt) } }
            do {
                let lost = try await store.renew(
                    consumer: consumer, held: held, running: held.count, concurrency: max(1, context.configuration.concurrency))
                if !lost.isEmpty { release(lost, reason: "cancelled, or started again elsewhere after this worker's lease ran out") }
            } catch {
                if !Task.isCancelled { logger.warning("Fleet: could not renew the leases of \(held.count) job(s): \(FleetError.describe(error))") }
            }
            try? await Task.sleep(for: settings.heartbeat)
        }
    }

    private func timeoutLoop() async {
        while !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(50))
            let now = ContinuousClock.now
            let due = state.withLock { $0.held.filter { $0.value.deadline <= now } }
            for (id, held) in due {
                let message = "the job ran past its execution timeout"
                let after = try? await store.stop(id, as: .timedOut, error: message, attempt: held.attempt)
                context.metrics.jobStopped(status: JobStatus.timedOut.rawValue)
                release([id], reason: message)
                if after == .timedOut, let webhook = held.webhook { sendWebhook(id, to: webhook, input: held.input) }
            }
        }
    }

    private func followCancels() async {
        while !Task.isCancelled {
            let subscriber: RedisSubscriber
            do {
                subscriber = try await store.redis.connector().subscriber(channels: [store.keys.cancels])
            } catch {
                try? await Task.sleep(for: .seconds(1))
                continue
            }
            await withTaskCancellationHandler {
                for await event in subscriber.events {
                    guard case .message(let message) = event else { continue }
                    release([String(decoding: message.payload, as: UTF8.self)], reason: "cancelled")
                }
            } onCancel: {
                subscriber.close()
            }
            subscriber.close()
            if !Task.isCancelled { try? await Task.sleep(for: .milliseconds(200)) }
        }
    }

    func finishStops() {
        stopContinuation.finish()
        dropBlockingConnection()
    }

    // MARK: Jobs a gateway starts as it queues them

    /// Promises a slot to a submission under way, when one is free and the handler is ready;
    /// `runDirect` or `unreserveDirect` ends the promise.
    func reserveDirect() -> Bool {
        guard context.health.current == .ready else { return false }
        return state.withLock { state in
            guard state.accepting, state.held.count + state.reserved < concurrency else { return false }
            state.reserved += 1
            return true
        }
    }

    func unreserveDirect() {
        state.withLock { $0.reserved -= 1 }
    }

    /// `runDirect`, then waits for the job `id` (a /runsync's own, usually the one started) and
    /// answers its report as recorded: no wake through Pub/Sub, no read. Nil when `id` was not
    /// among them or ended otherwise (stopped, a result Redis refused).
    func runDirect(_ started: [FleetStore.Started], awaiting id: String) async -> JobStatusReport? {
        guard started.contains(where: { $0.id == id }) else {
            await runDirect(started)
            return nil
        }
        state.withLock { $0.awaited[id] = .some(nil) }
        await runDirect(started)
        let task = state.withLock { $0.direct[id] }
        await task?.value
        return state.withLock { $0.awaited.removeValue(forKey: id) ?? nil }
    }

    /// Runs the jobs the submit step started for this process, each in a task of its own, beside
    /// the loop's (whose slots count them).
    func runDirect(_ started: [FleetStore.Started]) async {
        let jobs = await accept(started)
        state.withLock { $0.reserved -= 1 }
        for object in jobs {
            let job: Job
            do {
                job = try Job(json: object)
            } catch {
                let id = object["id"]?.stringValue ?? ""
                let bytes = (try? JSONValue.object(["error": .string("the job is not valid: \(error)")]).serialized()) ?? []
                if let held = state.withLock({ $0.held.removeValue(forKey: id) }) {
                    _ = try? await store.finish(id, attempt: held.attempt, status: .failed, result: bytes)
                }
                continue
            }
            let runner = context.runner(sink: self)
            let task = Task {
                _ = await runner.run(job) { [weak self] in self?.state.withLock { $0.held[job.id] == nil } ?? true }
                self.directEnded(job.id)
            }
            state.withLock { state in
                // A job that already ended (or was released) before its task was recorded.
                if state.held[job.id] != nil { state.direct[job.id] = task }
            }
        }
    }

    private func directEnded(_ id: String) {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.direct[id] = nil
            guard state.direct.isEmpty else { return [] }
            defer { state.drainWaiters = [] }
            return state.drainWaiters
        }
        for waiter in waiters { waiter.resume() }
    }

    /// No more jobs started here; returns once those running have ended.
    func drainDirect() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let done = state.withLock { state -> Bool in
                state.accepting = false
                if state.direct.isEmpty { return true }
                state.drainWaiters.append(continuation)
                return false
            }
            if done { continuation.resume() }
        }
    }

    // MARK: Results

    func postResult(_ body: ResultPayload, jobID: String, isStream: Bool) async -> DeliveryOutcome {
        guard let held = state.withLock({ $0.held[jobID] }) else {
            JobLog(base: logger, jobID: jobID).logger.info("Fleet: a result of a job this worker no longer holds was discarded")
            return .delivered
        }
        if body.json["status"] == "IN_PROGRESS", !isStream {
            return await update(jobID, held: held, chunk: false, value: body.json["output"] ?? .null)
        }
        var result: [String: JSONValue] = [:]
        let error = body.json["error"]
        if let error { result["error"] = error } else { result["output"] = body.json["output"] ?? .null }
        let bytes: [UInt8]
        do {
            bytes = try JSONValue.object(result).serialized()
        } catch {
            return .rejected("the result cannot be encoded: \(error)")
        }
        state.withLock { state in
            if state.held[jobID]?.attempt == held.attempt { state.held[jobID]?.finishing = true }
        }
        do {
            let outcome = try await store.finish(jobID, attempt: held.attempt, status: error == nil ? .completed : .failed, result: bytes)
            state.withLock { state in
                if state.held[jobID]?.attempt == held.attempt { state.held[jobID] = nil }
            }
            switch outcome {
            case .recorded(let created, let started, let finished, let worker):
                if let recorded, let report = try? FleetStore.report(
                    id: jobID, key: store.keys.job(jobID), status: (error == nil ? JobStatus.completed : .failed).rawValue,
                    created: created, started: started, finished: finished, worker: worker, result: bytes, progress: nil),
                    !(report.status == .completed && report.output == [])
                {
                    let awaited = state.withLock { state -> Bool in
                        guard state.awaited[jobID] != nil else { return false }
                        state.awaited[jobID] = .some(report)
                        return true
                    }
                    if !awaited { recorded(jobID, report) }
                }
                if let webhook = held.webhook { sendWebhook(jobID, to: webhook, input: held.input) }
            case .stale(let now):
                JobLog(base: logger, jobID: jobID).logger.warning("Fleet: the result of attempt \(held.attempt) was discarded: the job is now \(now) (status, attempt)")
            case .gone:
                JobLog(base: logger, jobID: jobID).logger.warning("Fleet: the result was discarded: the job's record is gone (expired or purged)")
            }
            return .delivered
        } catch let error as RedisError where error.isServerError {
            // Redis will not take it (a damaged record): let the job go, so its lease runs out and
            // it runs again or fails after MAX_ATTEMPTS, rather than hold it for ever.
            state.withLock { state in
                if state.held[jobID]?.attempt == held.attempt { state.held[jobID] = nil }
            }
            return .rejected("the fleet's Redis refused the result: \(error)")
        } catch {
            state.withLock { state in
                if state.held[jobID]?.attempt == held.attempt { state.held[jobID]?.finishing = false }
            }
            return .failed("the fleet's Redis at \(store.redis.server): \(FleetError.describe(error))")
        }
    }

    func postChunk(_ body: ResultPayload, jobID: String) async -> DeliveryOutcome {
        guard let held = state.withLock({ $0.held[jobID] }) else { return .delivered }
        return await update(jobID, held: held, chunk: true, value: body.json["output"] ?? .null)
    }

    private func update(_ id: String, held: Held, chunk: Bool, value: JSONValue) async -> DeliveryOutcome {
        do {
            _ = try await store.update(id, attempt: held.attempt, chunk: chunk, value: try value.serialized())
            return .delivered
        } catch let error as RedisError where error.isServerError {
            return .rejected("the fleet's Redis refused the update: \(error)")
        } catch let error as RedisError {
            return .failed("the fleet's Redis at \(store.redis.server): \(error)")
        } catch {
            return .rejected("the update cannot be encoded: \(error)")
        }
    }

    /// Once per final result: only the run whose result was recorded sends it.
    private func sendWebhook(_ id: String, to url: String, input: JSONValue) {
        let store = self.store
        let limits = self.limits
        let client = context.httpClient
        let logger = JobLog(base: self.logger, jobID: id).logger
        Task {
            guard let report = try? await store.report(id) else { return }
            await Webhook.deliver(
                report.webhookPayload(input: input, webhook: url), to: url, retryDelays: limits.webhookRetryDelays,
                timeout: limits.webhookTimeout, client: client, logger: logger)
        }
    }
}

import Logging
import WorkerJSON

/// Runs one job through the handler and delivers what it produced: stream chunks, progress,
/// then exactly one final result (or nothing for a job the platform stopped).
package struct JobRunner: Sendable {
    /// What every job of a run shares, behind one reference: the endpoint server makes a runner
    /// per job (its sink is the job's), and copying the configuration's strings and arrays into
    /// each was a measurable share of a /runsync.
    package final class Settings: Sendable {
        let handler: any RawJobHandler
        let options: WorkerOptions
        let configuration: WorkerConfiguration
        let metrics: WorkerMetrics
        let logger: Logger
        /// Read once: reached through `configuration` per job, it copied the whole timings value.
        let resultRetryDelays: [Duration]

        package init(
            handler: any RawJobHandler, options: WorkerOptions, configuration: WorkerConfiguration, metrics: WorkerMetrics,
            logger: Logger
        ) {
            self.handler = handler
            self.options = options
            self.configuration = configuration
            self.metrics = metrics
            self.logger = logger
            self.resultRetryDelays = configuration.timings.resultRetryDelays
        }
    }

    let settings: Settings
    let sink: any ResultSink
    /// A queue worker's: final results are handed over and delivered in the background, so the
    /// job's slot frees as soon as it finishes. Without one (HTTP modes, one-shot) they are
    /// delivered before `run` returns.
    var deliveries: ResultDeliveryQueue?
    /// `sink`, when it takes final results at once (set by the initializer that knows).
    let inProcess: (any InProcessResultSink)?

    package init(settings: Settings, sink: any ResultSink, deliveries: ResultDeliveryQueue? = nil) {
        self.settings = settings
        self.sink = sink
        self.deliveries = deliveries
        self.inProcess = nil
    }

    package init(settings: Settings, inProcessSink sink: some InProcessResultSink) {
        self.settings = settings
        self.sink = sink
        self.deliveries = nil
        self.inProcess = sink
    }

    package struct FinalResult: Sendable {
        package var json: JSONValue
        package var isStream: Bool
        package var isError: Bool

        /// The body as delivered (canonical JSON), serialized only when asked for: the one-shot
        /// run prints it, while the queue loop and the endpoint server never read it.
        package var body: [UInt8] { (try? json.serialized()) ?? [] }
    }

    /// Returns the final result delivered, or nil when the job was stopped. `executionTimeout`
    /// (the job's policy, or the HTTP modes' default) sets `JobContext.deadline`; without one the
    /// worker's `WorkerOptions.executionTimeout` does, if set.
    package func run(
        _ job: Job, executionTimeout: Duration? = nil, wasStopped: @escaping @Sendable () -> Bool
    ) async -> FinalResult? {
        let started = ContinuousClock.now
        let metrics = settings.metrics
        metrics.jobStarted()
        let log = JobLog(base: settings.logger, job: job)
        log(.info, "Started.")
        if log.base.logLevel <= .trace, let input = try? job.input.jsonString() {
            log(.trace, "Input: \(input.prefix(1024))")
        }

        let sink = self.sink
        let delivery = Delivery(delays: settings.resultRetryDelays, log: log)
        let posts = JobPosts(sink: sink, delivery: delivery, jobID: job.id)
        let writer = JobOutputWriter(
            aggregateChunks: settings.options.returnAggregateStream, deliver: posts.chunk, progress: posts.progress)
        let timeout = executionTimeout ?? Self.policyTimeout(job) ?? settings.options.executionTimeout
        var context = JobContext(
            job: job, log: log, workerID: settings.configuration.workerID, deadline: timeout.map { started + $0 },
            progress: writer.progress)
        context.metrics = metrics

        var thrown: (any Error)?
        do {
            try await settings.handler.handle(job, output: writer, context: context)
        } catch {
            thrown = error
        }
        if wasStopped() {
            writer.cancelProgress()
            metrics.jobAbandoned()
            log(.info, "Job stopped.")
            return nil
        }
        await writer.drainProgress()

        let (body, isStream) = finalBody(outcome: writer.outcome, thrown: thrown, log: log)
        let (payload, isError) = ResultBody.encodeForDelivery(body, refreshWorker: settings.options.refreshWorker)
        let refresh = settings.options.refreshWorker
        if let inProcess {
            inProcess.record(payload, jobID: job.id, isStream: isStream)
            log(.info, "Finished.")
        } else if let deliveries {
            var fallback: (@Sendable (String) -> ResultPayload)?
            if !isError { fallback = { @Sendable reason in Self.refusedResult(reason, refreshWorker: refresh) } }
            await deliveries.deliver(
                .init(jobID: job.id, payload: payload, isStream: isStream, logger: log.logger, fallback: fallback))
        } else {
            var delivered = await delivery.send("job result") {
                await sink.postResult(payload, jobID: job.id, isStream: isStream)
            }
            if case .rejected(let reason) = delivered, !isError {
                let replacement = Self.refusedResult(reason, refreshWorker: refresh)
                delivered = await delivery.send("error result") {
                    await sink.postResult(replacement, jobID: job.id, isStream: isStream)
                }
            }
            if delivered == .delivered { log(.info, "Finished.") }
        }
        metrics.jobFinished(status: isError ? "FAILED" : "COMPLETED", duration: .now - started)
        return FinalResult(json: payload.json, isStream: isStream, isError: isError)
    }

    /// What a job whose result the platform refused reports instead: without it the job would
    /// have no outcome.
    private static func refusedResult(_ reason: String, refreshWorker: Bool) -> ResultPayload {
        ResultBody.encodeForDelivery(["error": .string("the platform refused the job's result: \(reason)")], refreshWorker: refreshWorker).0
    }

    /// A job's own `policy.executionTimeout` (ms), when the platform passes it on.
    private static func policyTimeout(_ job: Job) -> Duration? {
        guard let ms = job["policy"]?["executionTimeout"]?.intValue, ms > 0 else { return nil }
        return .milliseconds(ms)
    }

    private func finalBody(
        outcome: JobOutputWriter.Outcome, thrown: (any Error)?, log: JobLog
    ) -> (JSONValue, isStream: Bool) {
        let refresh = settings.options.refreshWorker
        switch (outcome, thrown) {
        case (.streamError(let error), _):
            return (ResultBody.forStreamError(error, refreshWorker: refresh), true)
        case (.stream, let error?):
            log(.error, "Captured Handler Exception: \(error)")
            return (ResultBody.forStreamThrown(error, refreshWorker: refresh), true)
        case (_, let error?):
            log(.error, "Captured Handler Exception: \(error)")
            return (
                ResultBody.forThrownError(
                    error, workerID: settings.configuration.podIDIsSet ? settings.configuration.workerID : nil,
                    hostname: settings.configuration.podHostname, refreshWorker: refresh), false
            )
        case (.stream(let aggregate), nil):
            return (ResultBody.forStreamEnd(aggregate: aggregate, refreshWorker: refresh), true)
        case (.value(let value), nil):
            return (ResultBody.forReturnedValue(value, refreshWorker: refresh), false)
        case (.none, nil):
            return (ResultBody.forReturnedValue(.null, refreshWorker: refresh), false)
        }
    }
}

/// Where one job's chunks and progress updates are posted, behind one reference: the writer's
/// two closures capture only it, where closures capturing the sink, the delivery and the id each
/// needed a context of their own, made and freed for every job.
private final class JobPosts: Sendable {
    let sink: any ResultSink
    let delivery: Delivery
    let jobID: String

    init(sink: any ResultSink, delivery: Delivery, jobID: String) {
        self.sink = sink
        self.delivery = delivery
        self.jobID = jobID
    }

    @Sendable func chunk(_ chunk: JSONValue) async throws {
        let body = try ResultPayload(ResultBody.forChunk(chunk))
        let limit = sink.maxChunkBytes
        guard body.byteCount <= limit else { throw WorkerRuntimeError.chunkTooLarge(body.byteCount, limit: limit) }
        let (sink, jobID) = (self.sink, self.jobID)
        let outcome = await delivery.send("stream chunk") { await sink.postChunk(body, jobID: jobID) }
        if let reason = outcome.reason { throw DeliveryError(reason: reason) }
    }

    @Sendable func progress(_ body: ResultPayload) async {
        let (sink, jobID) = (self.sink, self.jobID)
        _ = await delivery.send("progress update") { await sink.postResult(body, jobID: jobID, isStream: false) }
    }
}

/// A post that failed for good.
package struct DeliveryError: Error, CustomStringConvertible {
    let reason: String
    package var description: String { "delivery to the platform failed: \(reason)" }
}

/// Retries a post on 5xx, 429 and network errors (3 attempts, 2 s then 3 s apart by default);
/// another 4xx is final. For stream chunks and progress, and final results outside the queue
/// worker (which uses `ResultDeliveryQueue`).
package struct Delivery: Sendable {
    let delays: [Duration]
    let log: JobLog

    package init(delays: [Duration], log: JobLog) {
        self.delays = delays
        self.log = log
    }

    package func send(_ what: String, _ attempt: @Sendable () async -> DeliveryOutcome) async -> DeliveryOutcome {
        var index = 0
        while true {
            let outcome = await attempt()
            switch outcome {
            case .delivered:
                return outcome
            case .rejected(let reason):
                log(.error, "Failed to return job results. | \(what) refused: \(reason)")
                return outcome
            case .failed(let reason), .throttled(let reason, _):
                guard index < delays.count else {
                    log(.error, "Failed to return job results. | \(what) failed after \(index + 1) attempts: \(reason)")
                    return outcome
                }
                log(.warning, "Posting \(what) failed, retrying in \(delays[index]): \(reason)")
                try? await Task.sleep(for: delays[index])
                index += 1
            }
        }
    }
}

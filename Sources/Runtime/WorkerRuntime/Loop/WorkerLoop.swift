import Logging
import ServiceLifecycle
import Synchronization
import WorkerJSON

/// The production job loop (docs/protocol.md, sections 1.4–1.11): takes jobs while slots are free, runs each in its
/// own task, listens on the stop channel, and on graceful shutdown stops taking jobs, lets the
/// running ones finish and post, then returns.
package struct WorkerLoop: Sendable {
    let source: any JobSource
    let context: WorkerContext
    let inFlight = InFlightJobs()
    /// Final results on their way to job-done; a job's slot frees once its result is handed over.
    let deliveries: ResultDeliveryQueue
    private let stopping = StopFlag()

    private var options: WorkerOptions { context.options }
    private var configuration: WorkerConfiguration { context.configuration }
    private var logger: Logger { context.logger }

    package init(source: any JobSource, context: WorkerContext) {
        self.source = source
        self.context = context
        self.deliveries = ResultDeliveryQueue(sink: source, timings: context.configuration.timings)
    }

    /// The ids of the jobs running now, in the order they started (what the heartbeat reports).
    var jobsInProgress: [String] { inFlight.ids }

    /// Stops taking jobs; `run()` returns once running jobs have posted their results.
    package func stop() { stopping.stop() }

    /// Runs until `stop()`, a graceful shutdown, or (with `refreshWorker`) the first finished job;
    /// then lets running jobs finish and gives results still being delivered the grace period.
    package func run() async {
        let poller = Task { await pollJobs() }
        let stopListener = Task { await pollStops() }
        stopping.onStop { poller.cancel() }
        await withTaskCancellationHandler {
            await withGracefulShutdownHandler {
                await poller.value
            } onGracefulShutdown: {
                logger.info("Shutdown requested: no new jobs; finishing \(inFlight.count) in progress.")
                stopping.stop()
            }
            await inFlight.drain()
            await deliveries.drain(grace: configuration.timings.deliveryGrace, logger: logger)
        } onCancel: {
            // A hard cancel (after the graceful period): abandon running jobs and deliveries.
            stopping.stop()
            inFlight.cancelAll()
            deliveries.cancelAll()
        }
        stopListener.cancel()
        await stopListener.value
    }

    private func pollJobs() async {
        var backoff = Backoff(base: configuration.timings.backoffBase, cap: configuration.timings.backoffCap)
        var concurrency = max(1, configuration.concurrency)
        var lastLoggedInProgress = -1
        while !stopping.isStopped && !Task.isCancelled {
            concurrency = options.concurrency.evaluate(current: concurrency, environment: configuration.concurrency)
            let running = inFlight.count
            if running != lastLoggedInProgress {
                logger.debug("Jobs in progress: \(running)")
                lastLoggedInProgress = running
            }
            let free = concurrency - running
            guard free > 0 else {
                // Wake the moment a slot frees; a dynamic setting is also re-checked meanwhile.
                await inFlight.slotFreed.wait(timeout: options.concurrency.isDynamic ? configuration.timings.concurrencyRecheck : nil)
                continue
            }
            let outcome = await source.takeJobs(count: free, jobInProgress: running > 0)
            if Task.isCancelled && stopping.isStopped, case .jobs = outcome {
                // Taken just as shutdown began: the platform assigned them to us, so run them.
                logger.info("Jobs arrived during shutdown; running them before exiting.")
            }
            switch outcome {
            case .jobs(let items):
                backoff.reset()
                logger.debug("Jobs in queue: \(items.count)")
                for item in items { await accept(item) }
            case .noJob:
                backoff.reset()
            case .tooManyRequests:
                logger.warning("job-take answered 429 Too Many Requests; waiting \(configuration.timings.tooManyRequestsDelay).")
                try? await Task.sleep(for: configuration.timings.tooManyRequestsDelay)
            case .failed(let reason):
                let wait = backoff.next()
                if !Task.isCancelled {
                    logger.error("Failed to get job. | \(reason) | retrying in \(wait)")
                }
                try? await Task.sleep(for: wait)
            }
        }
    }

    private func accept(_ item: JSONValue) async {
        let job: Job
        do {
            job = try Job(json: item)
        } catch {
            logger.error("Skipping a job the platform sent: \(error)")
            if let id = error.jobID {
                // The platform considers it taken: answer it, or it waits for its timeout.
                let (body, _) = ResultBody.encodeForDelivery(["error": .string(error.description)], refreshWorker: false)
                await deliveries.deliver(
                    .init(jobID: id, payload: body, isStream: false, logger: JobLog(base: logger, jobID: id).logger))
            }
            return
        }
        let runner = context.runner(sink: source, deliveries: deliveries)
        let inFlight = self.inFlight
        let stopping = self.stopping
        let refresh = options.refreshWorker
        let started = inFlight.start(id: job.id) {
            _ = await runner.run(job) { inFlight.wasStopped(job.id) }
            if refresh { stopping.stop() }
        }
        if !started { logger.warning("Job \(job.id) is already running here; ignoring the duplicate.") }
    }

    private func pollStops() async {
        while !Task.isCancelled {
            guard let outcome = await source.pollStopRequests() else {
                if !Task.isCancelled { logger.warning("The job-take URL has no /job-take/: the stop channel is off.") }
                return
            }
            switch outcome {
            case .stop(let ids):
                for id in ids where inFlight.contains(id) {
                    JobLog(base: logger, jobID: id)(.info, "Stopping job.")
                    if inFlight.stop(id) { context.metrics.jobStopped(status: "CANCELLED") }
                }
            case .nothing:
                try? await Task.sleep(for: configuration.timings.stopPollDelay)
            case .tooManyRequests:
                try? await Task.sleep(for: configuration.timings.tooManyRequestsDelay)
            case .failed(let reason):
                if !Task.isCancelled { logger.warning("Job-stop poll failed: \(reason)") }
                try? await Task.sleep(for: configuration.timings.stopPollDelay)
            }
        }
    }
}

/// Set once; runs the registered action (cancel the in-flight job-take) when set.
final class StopFlag: Sendable {
    private let state = Mutex<(stopped: Bool, action: (@Sendable () -> Void)?)>((false, nil))

    var isStopped: Bool { state.withLock { $0.stopped } }

    func onStop(_ action: @escaping @Sendable () -> Void) {
        let runNow = state.withLock { state -> Bool in
            state.action = action
            return state.stopped
        }
        if runNow { action() }
    }

    func stop() {
        let action = state.withLock { state -> (@Sendable () -> Void)? in
            guard !state.stopped else { return nil }
            state.stopped = true
            return state.action
        }
        action?()
    }
}

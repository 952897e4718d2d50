import Logging
import Synchronization
import WorkerJSON

/// Takes over the workflows of dead workers: at start-up and then every half lease (more often
/// while it finds work), pending workflows of this code version whose lease ran out (running, or
/// queued by a batch and not started) are claimed (`FOR UPDATE SKIP LOCKED` in
/// PostgreSQL: two workers never take the same one) and resumed in the background, at most
/// `BATCH_CONCURRENCY` at a time. One taken over too often is marked failed instead (a dead
/// letter: something in it kills workers).
final class WorkflowRecovery: Sendable {
    let workflow: LeadWorkflow
    let inFlight: InFlightLeads
    let logger: Logger
    private let loop = Mutex<Task<Void, Never>?>(nil)
    private let running = Atomic<Int>(0)

    init(workflow: LeadWorkflow, inFlight: InFlightLeads, logger: Logger) {
        self.workflow = workflow
        self.inFlight = inFlight
        self.logger = logger
    }

    var configuration: OrchestratorConfiguration { workflow.configuration }
    var interval: Duration { min(max(configuration.lease / 2, .milliseconds(250)), .seconds(30)) }

    func start() {
        let task = Task { [self] in
            // While a round finds work (a dead worker's batch), look again soon: its leads are
            // then taken up as fast as room frees, not a round per interval. A round with room
            // that finds nothing ends that.
            var draining = false
            while !Task.isCancelled {
                let room = configuration.batchConcurrency - running.load(ordering: .relaxed)
                let started = await recoverOnce()
                if !started.isEmpty {
                    draining = true
                } else if room > 0 {
                    draining = false
                }
                try? await Task.sleep(for: draining ? min(interval, .milliseconds(100)) : interval)
            }
        }
        loop.withLock { $0 = task }
    }

    func stop() async {
        let task = loop.withLock { task in defer { task = nil }; return task }
        task?.cancel()
        await task?.value
    }

    /// One round: claims what there is room for and starts it. Returns the leads started.
    @discardableResult
    func recoverOnce() async -> [String] {
        let room = configuration.batchConcurrency - running.load(ordering: .relaxed)
        guard room > 0 else { return [] }
        let claimed: [WorkflowRecord]
        do {
            claimed = try await workflow.store.claimAbandoned(
                owner: workflow.owner, lease: configuration.lease, version: configuration.codeVersion, limit: room)
        } catch {
            logger.warning("Looking for workflows of dead workers failed; trying again in \(interval): \(error)")
            return []
        }
        var started: [String] = []
        for record in claimed where !inFlight.contains(record.leadID) {
            // attempts counts the first start too: recoveries are the rest.
            if record.attempts - 1 > configuration.maxRecoveries {
                let reason = "taken over \(record.attempts - 1) times after its worker stopped without finishing (WORKFLOW_MAX_RECOVERIES=\(configuration.maxRecoveries)); "
                    + "check the workers' logs for lead \(record.leadID), then process_lead retries it"
                logger.error("Lead \(record.leadID): \(reason)")
                try? await workflow.store.finish(
                    record.leadID, status: .failed, output: nil, error: ["stage": "recovery", "reason": .string(reason)], owner: workflow.owner, step: nil)
                continue
            }
            if record.attempts == 1 {
                logger.info("Starting lead \(record.leadID), queued by a batch whose worker stopped before it")
            } else {
                logger.info("Resuming lead \(record.leadID), left unfinished by a stopped worker (attempt \(record.attempts))")
            }
            running.add(1, ordering: .relaxed)
            started.append(record.leadID)
            let deadline = ContinuousClock.now + configuration.workflowTimeout
            inFlight.start(record.leadID) { [self] in
                defer { running.subtract(1, ordering: .relaxed) }
                do {
                    return try await workflow.resume(record, deadline: deadline, logger: logger)
                } catch {
                    if !(error is CancellationError) { logger.warning("Recovered lead \(record.leadID) did not finish: \(error)") }
                    throw error
                }
            }
        }
        return started
    }
}

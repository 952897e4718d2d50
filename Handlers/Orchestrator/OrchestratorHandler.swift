import EndpointClient
import Logging
import ServiceLifecycle
import WorkerJSON
import WorkerRuntime

/// Lead qualification and enrichment as durable workflows over other endpoints' jobs
/// (`Handlers/Orchestrator`, docs/orchestrator.md).
struct OrchestratorHandler: RawJobHandler {
    let workflow: LeadWorkflow
    let inFlight: InFlightLeads
    let recovery: WorkflowRecovery
    /// Closes the clients (HTTP threads, the database pool).
    let closeClients: @Sendable () async -> Void
    var configuration: OrchestratorConfiguration { workflow.configuration }
    var store: any WorkflowStore { workflow.store }

    func start() async throws {
        let logger = Logger(label: "orchestrator")
        logger.info("Workflows are kept in \(store.description); worker \(workflow.owner), code version \(configuration.codeVersion)")
        if configuration.database == nil {
            logger.warning("DATABASE_URL is not set: workflows live in this process's memory and are lost when it stops")
        }
        configuration.logDownstream(to: logger)
        // Waiting for the database ends when the worker is told to stop (SIGTERM): a refused
        // connection fails at once, an unreachable server within DATABASE_STARTUP_TIMEOUT.
        let workflowStore = store
        do {
            try await cancelWhenGracefulShutdown { try await workflowStore.prepare() }
        } catch is CancellationError {
            throw OrchestratorError.startup("start-up was stopped while waiting for \(workflowStore.description): the worker is shutting down")
        }
        let others = try await store.pendingOfOtherVersions(than: configuration.codeVersion)
        if others > 0 {
            logger.warning(
                "\(others) unfinished workflows were started under other code versions and are not recovered here; process_lead with their ids resumes them")
        }
        if configuration.recovery { recovery.start() }
    }

    func shutdown() async throws {
        await recovery.stop()
        await inFlight.cancelAll()
        await closeClients()
    }

    func handle(_ job: Job, output: JobOutputWriter, context: JobContext) async throws {
        let request = try OrchestratorRequest.parse(job.input)
        let deadline = context.deadline ?? .now + configuration.workflowTimeout
        switch request {
        case .processLead(let lead):
            try output.respond(try await process(lead, deadline: deadline, logger: context.logger))
        case .batchProcess(let leads, let concurrency):
            try output.respond(try await batch(leads, concurrency: concurrency ?? configuration.batchConcurrency, deadline: deadline, context: context))
        case .getLead(let id):
            try output.respond(try await store.workflow(id)?.json ?? ["found": false, "lead_id": .string(id)])
        case .getBatch(let id):
            try output.respond(try await store.batch(id)?.json ?? ["found": false, "batch_id": .string(id)])
        }
    }

    func process(_ lead: Lead, deadline: ContinuousClock.Instant, logger: Logger) async throws -> JSONValue {
        let workflow = self.workflow
        return try await inFlight.run(lead.id) { try await workflow.run(lead, deadline: deadline, logger: logger) }
    }
}

import EndpointClient
import Logging
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
        let llm = configuration.llm.map { "\($0.model) at \($0.baseURL)" } ?? "none (LLM_BASE_URL unset): rule scorer and templates"
        logger.info("LLM: \(llm); context7: \(configuration.context7?.baseURL ?? "none"); memory: \(configuration.memory?.baseURL ?? "none")")
        try await store.prepare()
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
            try output.respond(await batch(leads, concurrency: concurrency ?? configuration.batchConcurrency, deadline: deadline, context: context))
        case .getLead(let id):
            try output.respond(try await store.workflow(id)?.json ?? ["found": false, "lead_id": .string(id)])
        }
    }

    func process(_ lead: Lead, deadline: ContinuousClock.Instant, logger: Logger) async throws -> JSONValue {
        let workflow = self.workflow
        return try await inFlight.run(lead.id) { try await workflow.run(lead, deadline: deadline, logger: logger) }
    }

    /// Every lead of the batch through its own workflow, `concurrency` at a time; each reported
    /// on its own (a failed or malformed lead does not stop the others).
    func batch(_ leads: [Result<Lead, OrchestratorError>], concurrency: Int, deadline: ContinuousClock.Instant, context: JobContext) async -> JSONValue {
        let started = ContinuousClock.now
        var reports = [JSONValue](repeating: .null, count: leads.count)
        await withTaskGroup(of: (Int, JSONValue).self) { group in
            var next = 0
            func add() {
                let index = next
                next += 1
                group.addTask { (index, await self.report(leads[index], deadline: deadline, logger: context.logger)) }
            }
            for _ in 0..<min(concurrency, leads.count) { add() }
            var finished = 0
            let every = max(1, leads.count / 20)
            while let (index, report) = await group.next() {
                reports[index] = report
                finished += 1
                if finished % every == 0 && finished < leads.count {
                    context.progress(["processed": .integer(Int64(finished)), "total": .integer(Int64(leads.count))])
                }
                if next < leads.count { add() }
            }
        }
        var counts: [String: Int64] = [:]
        for report in reports { counts[report["status"]?.stringValue ?? "failed", default: 0] += 1 }
        let elapsed = ContinuousClock.now - started
        return [
            "total": .integer(Int64(leads.count)), "qualified": .integer(counts["qualified"] ?? 0), "rejected": .integer(counts["rejected"] ?? 0),
            "failed": .integer(counts["failed"] ?? 0), "invalid": .integer(counts["invalid"] ?? 0),
            "duration_ms": .number(elapsed.fractionalMilliseconds),
            "leads": .array(reports),
        ]
    }

    private func report(_ entry: Result<Lead, OrchestratorError>, deadline: ContinuousClock.Instant, logger: Logger) async -> JSONValue {
        let lead: Lead
        switch entry {
        case .failure(let error): return ["status": "invalid", "error": .string(error.description)]
        case .success(let parsed): lead = parsed
        }
        do {
            let result = try await process(lead, deadline: deadline, logger: logger)
            var fields: [String: JSONValue] = ["lead_id": .string(lead.id)]
            for key in ["status", "score", "duration_ms", "reused", "resumed_after", "attempts"] { fields[key] = result[key] }
            return .object(fields)
        } catch let error as OrchestratorError {
            var fields: [String: JSONValue] = ["lead_id": .string(lead.id), "status": "failed", "error": .string(error.reason)]
            if let stage = error.stage { fields["stage"] = .string(stage.rawValue) }
            return .object(fields)
        } catch {
            return ["lead_id": .string(lead.id), "status": "failed", "error": .string("\(error)")]
        }
    }
}

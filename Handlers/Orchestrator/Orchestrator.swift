#if canImport(Glibc)
import Glibc
#endif
import CurlHTTP
import EndpointClient
import Logging
import PostgresClient
import WorkerEndpointServer
import WorkerFleet
import WorkerMCP
import WorkerRuntime
import WorkerOpenAI

/// The composition root, shared by `main` and the tests.
enum Orchestrator {
    /// Recorded on every workflow and step; raise it when a stage's meaning changes.
    static let codeVersion = "orchestrator-1"

    /// `llm`, `context7` and `memory` replace the configured ones (tests use stubs).
    static func makeRuntime(
        _ configuration: OrchestratorConfiguration, workerID: String = "local", llm: (any LanguageModel)? = nil,
        context7: (any JobEndpoint)? = nil, memory: (any JobEndpoint)? = nil
    ) throws -> WorkerRuntime {
        let handler = try makeHandler(configuration, workerID: workerID, llm: llm, context7: context7, memory: memory)
        return WorkerRuntime(
            handler: handler,
            options: WorkerOptions(name: "orchestrator", instructions: OrchestratorTools.instructions, tools: OrchestratorTools.all),
            features: [.openAIPassthrough(), .endpointServer(), .mcp(), .fleet()])
    }

    static func makeHandler(
        _ configuration: OrchestratorConfiguration, workerID: String = "local", llm: (any LanguageModel)? = nil,
        context7: (any JobEndpoint)? = nil, memory: (any JobEndpoint)? = nil
    ) throws -> OrchestratorHandler {
        let logger = Logger(label: "orchestrator")
        let http = CurlHTTPClient(name: "orchestrator")
        let database: PostgresClient?
        do {
            database = try configuration.database.map { try PostgresClient(configuration: $0) }
        } catch {
            throw ConfigurationError.invalidValue("DATABASE_URL", "(hidden)", expected: "\(error)")
        }
        let store: any WorkflowStore = database.map {
            PostgresWorkflowStore(
                client: $0, outageBudget: configuration.workflowTimeout, logger: logger, startupBudget: configuration.databaseStartupTimeout)
        } ?? InMemoryWorkflowStore()
        let pipeline = LeadPipeline(
            configuration: configuration,
            llm: llm ?? configuration.llm.map { OpenAIChatModel(configuration: $0, http: http, retries: configuration.downstreamRetries, backoff: configuration.retrySchedule) },
            context7: context7 ?? configuration.context7.map { EndpointClient(endpoint: $0, http: http) },
            memory: memory ?? configuration.memory.map { EndpointClient(endpoint: $0, http: http) })
        // A restarted worker is a new owner, even with the same pod id: its old leases must run out.
        let owner = "\(workerID)-\(String(UInt64.random(in: 0...UInt64.max), radix: 36))"
        let workflow = LeadWorkflow(pipeline: pipeline, store: store, owner: owner)
        let inFlight = InFlightLeads()
        return OrchestratorHandler(
            workflow: workflow, inFlight: inFlight, recovery: WorkflowRecovery(workflow: workflow, inFlight: inFlight, logger: logger),
            closeClients: {
                await http.shutdown()
                await database?.shutdown()
            })
    }
}

@main
struct OrchestratorMain {
    static func main() {
        WorkerRuntime.runAndExit { environment in
            try Orchestrator.makeRuntime(
                try OrchestratorConfiguration.fromEnvironment(environment), workerID: environment["RUNPOD_POD_ID"].flatMap { $0.isEmpty ? nil : $0 } ?? "local")
        }
    }
}

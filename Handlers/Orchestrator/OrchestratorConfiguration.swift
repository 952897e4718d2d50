import CurlHTTP
import EndpointClient
import Logging
import PostgresClient
import WorkerRuntime

/// The orchestrator's settings, read once from the environment (tests build them from a dictionary).
struct OrchestratorConfiguration: Sendable {
    /// `DATABASE_URL` and friends; nil keeps workflows in memory (lost with the process).
    var database: PostgresConfiguration?
    /// `DATABASE_STARTUP_TIMEOUT`: how long start-up waits for a database it cannot reach before
    /// the worker reports itself unhealthy (503 on `/ping`; a queue worker exits). A refused
    /// connection (a wrong password, role or database) fails start-up at once.
    var databaseStartupTimeout: Duration = .seconds(60)
    /// `CONTEXT7_ENDPOINT`: the context7 worker's endpoint; nil skips the context stage.
    var context7: Endpoint?
    /// `CONTEXT7_LIBRARY`: the library whose documentation gives the LLM context.
    var contextLibrary = "/websites/runpod_io"
    /// `CONTEXT7_QUERY`: the question asked of it; `{industry}` and `{company}` are filled from the
    /// lead. The default names the industry only, so leads of one industry share the context7
    /// worker's cached answer.
    var contextQuery = "How do {industry} companies use serverless GPUs?"
    /// `CONTEXT7_TOKENS`: how much documentation to fetch (it goes into the prompts).
    var contextTokens = 1500
    /// `CONTEXT7_CACHE_TTL`: how long fetched documentation is reused for the same question (0: never).
    var contextCacheTTL: Duration = .seconds(300)
    /// `MEMORY_ENDPOINT`: the memory worker's endpoint; nil skips storing leads.
    var memory: Endpoint?
    /// `MEMORY_NAMESPACE`: where leads are stored.
    var memoryNamespace = "leads"
    /// `LLM_BASE_URL` (an OpenAI-compatible API, such as a vLLM endpoint's `/openai/v1`); nil scores by rules.
    var llm: LLMConfiguration?
    /// `QUALIFICATION_THRESHOLD`: leads scoring below it are rejected.
    var threshold = 0.5
    /// `BATCH_CONCURRENCY`: leads of one batch in flight at once, unless the job asks for fewer or more.
    var batchConcurrency = 8
    /// `DOWNSTREAM_RETRIES`: tries after the first of a failed downstream call (within the deadline).
    var downstreamRetries = 3
    /// The pauses between those retries: from 250 ms, doubling, jittered, at most 10 s
    /// (Temporal's shape, with a lower cap: leads are interactive work).
    var retrySchedule = PollSchedule(initial: .milliseconds(250), factor: 2, cap: .seconds(10), jitter: 0.5)
    /// `WORKFLOW_TIMEOUT`: the deadline of a workflow not run by a job (recovered ones), and of a
    /// job without one.
    var workflowTimeout: Duration = .seconds(600)
    /// `WORKFLOW_LEASE`: how long a worker owns a workflow without renewing; after that a
    /// surviving worker may take it over.
    var lease: Duration = .seconds(30)
    /// `WORKFLOW_VERSION`: recorded on every workflow and step; recovery takes only its own version's.
    var codeVersion = Orchestrator.codeVersion
    /// `WORKFLOW_MAX_RECOVERIES`: a workflow recovered this often without finishing is marked failed.
    var maxRecoveries = 5
    /// `WORKFLOW_RECOVERY`: whether this worker takes over workflows of dead workers.
    var recovery = true
    /// Where `RUNPOD_API_KEY` was not sent (a host that is not RunPod's, or plain HTTP), for the
    /// start-up log: one line per downstream service.
    var withheldKeys: [String] = []

    static func fromEnvironment(_ env: [String: String]) throws -> OrchestratorConfiguration {
        let reader = EnvironmentReader(env)
        var configuration = OrchestratorConfiguration()
        do {
            configuration.database = try PostgresConfiguration.fromEnvironment(env)
        } catch {
            throw ConfigurationError.invalidValue("DATABASE_URL", "(hidden)", expected: "\(error)")
        }
        if let timeout = try reader.seconds("DATABASE_STARTUP_TIMEOUT", in: 1...3600) { configuration.databaseStartupTimeout = timeout }
        do {
            configuration.context7 = try Endpoint.fromEnvironment(env, variable: "CONTEXT7_ENDPOINT")
            configuration.memory = try Endpoint.fromEnvironment(env, variable: "MEMORY_ENDPOINT")
        } catch {
            throw ConfigurationError.invalidValue(error.endpoint, "", expected: error.reason)
        }
        if let library = reader.string("CONTEXT7_LIBRARY") {
            guard library.hasPrefix("/"), library.split(separator: "/").count >= 2 else {
                throw ConfigurationError.invalidValue("CONTEXT7_LIBRARY", library, expected: "a Context7 library id such as /vercel/next.js")
            }
            configuration.contextLibrary = library
        }
        if let query = reader.string("CONTEXT7_QUERY") { configuration.contextQuery = query }
        if let tokens = try reader.whole("CONTEXT7_TOKENS", in: 100...100_000) { configuration.contextTokens = tokens }
        if let ttl = try reader.seconds("CONTEXT7_CACHE_TTL", in: 0...86_400, expected: "seconds from 0 (no reuse) to 86400") {
            configuration.contextCacheTTL = ttl
        }
        if let namespace = reader.string("MEMORY_NAMESPACE") { configuration.memoryNamespace = namespace }
        configuration.llm = try LLMConfiguration.fromEnvironment(env)
        if let threshold = try reader.number("QUALIFICATION_THRESHOLD", in: 0...1, expected: "a number from 0 to 1") { configuration.threshold = threshold }
        if let concurrency = try reader.whole("BATCH_CONCURRENCY", in: 1...OrchestratorRequest.maxConcurrency) { configuration.batchConcurrency = concurrency }
        if let retries = try reader.whole("DOWNSTREAM_RETRIES", in: 0...20) { configuration.downstreamRetries = retries }
        if let timeout = try reader.seconds("WORKFLOW_TIMEOUT", in: 1...86_400) { configuration.workflowTimeout = timeout }
        if let lease = try reader.seconds("WORKFLOW_LEASE", in: 0.5...3600) { configuration.lease = lease }
        if let version = reader.string("WORKFLOW_VERSION") { configuration.codeVersion = version }
        if let recoveries = try reader.whole("WORKFLOW_MAX_RECOVERIES", in: 1...1000) { configuration.maxRecoveries = recoveries }
        if let recovery = try reader.flag("WORKFLOW_RECOVERY") { configuration.recovery = recovery }
        if reader.string("RUNPOD_API_KEY") != nil {
            var withheld: [(String, String)] = []
            if let context7 = configuration.context7, context7.apiKey == nil { withheld.append(("CONTEXT7_ENDPOINT", context7.description)) }
            if let memory = configuration.memory, memory.apiKey == nil { withheld.append(("MEMORY_ENDPOINT", memory.description)) }
            if let llm = configuration.llm, llm.apiKey == nil { withheld.append(("LLM_BASE_URL", URLCredentials.redacted(llm.baseURL))) }
            configuration.withheldKeys = withheld.map { entry -> String in
                let (variable, url) = entry
                let key = variable == "LLM_BASE_URL" ? "LLM_API_KEY" : "ENDPOINT_API_KEY"
                return "RUNPOD_API_KEY is not sent to \(url) (\(variable)): it goes only to RunPod's own hosts over HTTPS; "
                    + "set \(key) to send a key there"
            }
        }
        return configuration
    }

    /// Logs where each downstream service is, without credentials (URLs may carry a password),
    /// and where RunPod's key was withheld.
    func logDownstream(to logger: Logger) {
        let llm = self.llm.map { "\($0.model) at \(URLCredentials.redacted($0.baseURL))" } ?? "none (LLM_BASE_URL unset): rule scorer and templates"
        logger.info("LLM: \(llm); context7: \(context7?.description ?? "none"); memory: \(memory?.description ?? "none")")
        for line in withheldKeys { logger.notice("\(line)") }
    }
}

/// An OpenAI-compatible chat API that answers in JSON (`LLM_*`).
struct LLMConfiguration: Sendable, Equatable {
    /// `LLM_BASE_URL`, without a trailing slash: `https://api.openai.com/v1`, or a RunPod vLLM
    /// endpoint's `https://api.runpod.ai/v2/{id}/openai/v1`.
    var baseURL: String
    /// `LLM_MODEL`.
    var model: String
    /// `LLM_API_KEY`, sent wherever `LLM_BASE_URL` is. Without it, `ENDPOINT_API_KEY`, then
    /// `RUNPOD_API_KEY` (which a RunPod vLLM endpoint takes), but only when the URL is RunPod's own
    /// over HTTPS (`URLCredentials.mayReceiveRunPodKey`); any other LLM gets no key it was not given.
    var apiKey: String?
    /// `LLM_TIMEOUT`: one request.
    var requestTimeout: Duration = .seconds(60)
    /// `LLM_MAX_TOKENS`: the answer's length limit.
    var maxTokens = 800

    static func fromEnvironment(_ env: [String: String]) throws(ConfigurationError) -> LLMConfiguration? {
        let env = EnvironmentReader(env)
        let base: String
        do {
            guard let url = try env.baseURL("LLM_BASE_URL", example: "https://api.openai.com/v1") else { return nil }
            base = url
        } catch {
            // The reader's error repeats the URL, and a URL may carry a password.
            throw .invalidValue(
                "LLM_BASE_URL", URLCredentials.redacted(env.string("LLM_BASE_URL") ?? ""),
                expected: "an http:// or https:// URL with a host, such as https://api.openai.com/v1")
        }
        guard let model = env.string("LLM_MODEL") else {
            throw .invalidValue("LLM_MODEL", "", expected: "the model to ask (LLM_BASE_URL is set), such as gpt-4o-mini")
        }
        let platformKey = URLCredentials.mayReceiveRunPodKey(base) ? env.string("ENDPOINT_API_KEY") ?? env.string("RUNPOD_API_KEY") : nil
        var configuration = LLMConfiguration(baseURL: base, model: model, apiKey: env.string("LLM_API_KEY") ?? platformKey)
        if let timeout = try env.seconds("LLM_TIMEOUT", in: 0.001...3600) { configuration.requestTimeout = timeout }
        if let tokens = try env.whole("LLM_MAX_TOKENS", in: 16...32_768) { configuration.maxTokens = tokens }
        return configuration
    }
}

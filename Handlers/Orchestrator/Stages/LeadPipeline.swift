import Logging
import WorkerJSON

/// What each stage does, given its inputs: the downstream calls and the LLM, no storage. The
/// workflow (`LeadWorkflow`) decides which stages run and checkpoints their outputs.
struct LeadPipeline: Sendable {
    let configuration: OrchestratorConfiguration
    let llm: (any LanguageModel)?
    let context7: (any JobEndpoint)?
    let memory: (any JobEndpoint)?
    let contextCache: ContextCache

    init(configuration: OrchestratorConfiguration, llm: (any LanguageModel)?, context7: (any JobEndpoint)?, memory: (any JobEndpoint)?) {
        self.configuration = configuration
        self.llm = llm
        self.context7 = context7
        self.memory = memory
        self.contextCache = ContextCache(ttl: configuration.contextCacheTTL)
    }

    var retrying: Retrying { Retrying(retries: configuration.downstreamRetries, schedule: configuration.retrySchedule) }

    /// Documentation from the context7 endpoint for the configured library, asked about this lead.
    func context(_ lead: Lead, deadline: ContinuousClock.Instant, logger: Logger) async throws -> JSONValue {
        guard let context7 else { return ["skipped": "CONTEXT7_ENDPOINT is not set"] }
        let query = configuration.contextQuery
            .replacing("{industry}", with: lead.industry ?? "their industry")
            .replacing("{company}", with: lead.company ?? "the company")
        let input: JSONValue = [
            "action": "get_docs", "library_id": .string(configuration.contextLibrary), "query": .string(query),
            "tokens": .integer(Int64(configuration.contextTokens)),
        ]
        let retrying = retrying
        let key = "\(configuration.contextLibrary)\n\(query)\n\(configuration.contextTokens)"
        let output = try await contextCache.value(for: key) {
            try await retrying.run(.context, "get_docs on \(context7.name)", deadline: deadline, logger: logger) { (within: Duration) -> JSONValue in
                // Checked before the cache keeps it: an answer too large to save is never reused.
                let answer = try await context7.output(of: input, within: within)
                return try Self.bounded(.context, answer, from: "\(context7.name) (get_docs)")
            }
        }
        guard let content = output["content"]?.stringValue else {
            throw OrchestratorError.stage(.context, "\(context7.name) answered get_docs without \"content\": \(Self.excerpt(output))")
        }
        return [
            "library_id": output["library_id"] ?? .string(configuration.contextLibrary), "query": .string(query),
            "content": .string(content), "found": output["found"] ?? .bool(!content.isEmpty),
        ]
    }

    /// A score in [0, 1] with reasons: the LLM's when it answers validly, else the rules'.
    func qualify(_ lead: Lead, context: JSONValue, deadline: ContinuousClock.Instant, logger: Logger) async throws -> JSONValue {
        guard let llm else { return ScoringRules.score(lead) }
        let request = ChatRequest(
            messages: [
                .init(role: "system", content: Prompts.qualificationSystem),
                .init(role: "user", content: Prompts.leadMessage(lead, context: context)),
            ],
            schemaName: "lead_qualification", schema: Prompts.qualificationSchema)
        return try await structured(.qualification, request, llm: llm, deadline: deadline, logger: logger) { ScoringRules.score(lead) }
    }

    /// Facts about the lead and its company: the LLM's, or what the rules can tell. (The
    /// documentation went into the qualification; later prompts carry its result, not the text.)
    func enrich(_ lead: Lead, qualification: JSONValue, deadline: ContinuousClock.Instant, logger: Logger) async throws -> JSONValue {
        guard let llm else { return Enrichment.rules(lead) }
        let request = ChatRequest(
            messages: [
                .init(role: "system", content: Prompts.enrichmentSystem),
                .init(role: "user", content: Prompts.leadMessage(lead, qualification: qualification)),
            ],
            schemaName: "lead_enrichment", schema: Prompts.enrichmentSchema)
        var output = try await structured(.enrichment, request, llm: llm, deadline: deadline, logger: logger) { Enrichment.rules(lead) }
        if case .object(var fields) = output {
            // What the rules know for certain (the domain, free mail) is kept beside the LLM's view.
            for (key, value) in Enrichment.facts(lead) where fields[key] == nil { fields[key] = value }
            output = .object(fields)
        }
        return output
    }

    /// The lead in the memory endpoint, under a key of its own: storing again replaces it, so a
    /// repeated stage leaves one copy (the stage's idempotency key).
    func store(_ lead: Lead, qualification: JSONValue, deadline: ContinuousClock.Instant, logger: Logger) async throws -> JSONValue {
        guard let memory else { return ["skipped": "MEMORY_ENDPOINT is not set"] }
        let key = "lead:\(lead.id)"
        var metadata: [String: JSONValue] = ["lead_id": .string(lead.id), "kind": "lead"]
        if let score = qualification["score"] { metadata["score"] = score }
        if let company = lead.company { metadata["company"] = .string(company) }
        if let industry = lead.industry { metadata["industry"] = .string(industry) }
        let input: JSONValue = [
            "action": "store", "namespace": .string(configuration.memoryNamespace), "key": .string(key),
            "content": .string(Prompts.memoryText(lead, qualification: qualification)), "metadata": .object(metadata),
        ]
        let output = try await retrying.run(.memory, "store on \(memory.name)", deadline: deadline, logger: logger) { (within: Duration) -> JSONValue in
            let answer = try await memory.output(of: input, within: within)
            return try Self.bounded(.memory, answer, from: "\(memory.name) (store)")
        }
        return ["namespace": .string(configuration.memoryNamespace), "key": .string(key), "stored": output]
    }

    /// How to approach the lead: the LLM's plan, or the template's.
    func strategy(
        _ lead: Lead, qualification: JSONValue, enrichment: JSONValue, deadline: ContinuousClock.Instant, logger: Logger
    ) async throws -> JSONValue {
        guard let llm else { return GrowthTemplate.strategy(lead, qualification: qualification) }
        let request = ChatRequest(
            messages: [
                .init(role: "system", content: Prompts.strategySystem),
                .init(role: "user", content: Prompts.leadMessage(lead, qualification: qualification, enrichment: enrichment)),
            ],
            schemaName: "growth_strategy", schema: Prompts.strategySchema)
        return try await structured(.strategy, request, llm: llm, deadline: deadline, logger: logger) {
            GrowthTemplate.strategy(lead, qualification: qualification)
        }
    }

    /// The LLM's valid answer marked `method: llm`; after invalid answers, the fallback's, with
    /// why and how often the LLM was asked. An LLM that cannot be reached fails the stage.
    private func structured(
        _ stage: LeadStage, _ request: ChatRequest, llm: any LanguageModel, deadline: ContinuousClock.Instant, logger: Logger,
        fallback: () -> JSONValue
    ) async throws -> JSONValue {
        let outcome: StructuredAnswer.Outcome
        do {
            outcome = try await StructuredAnswer.ask(llm, request, deadline: deadline)
        } catch let error as LLMError {
            throw OrchestratorError.stage(stage, "the LLM (\(llm.name)) failed: \(error)")
        }
        switch outcome {
        case .valid(let answer, let attempts):
            let value = try Self.bounded(stage, answer, from: "the LLM (\(llm.name))")
            guard case .object(var fields) = value else { return value }
            fields["method"] = "llm"
            fields["model"] = .string(llm.name)
            fields["llm_attempts"] = .integer(Int64(attempts))
            return .object(fields)
        case .invalid(let problem, let attempts):
            logger.warning("\(stage.rawValue): the LLM's answers stayed invalid after \(attempts) tries (\(problem)); using the rules")
            guard case .object(var fields) = fallback() else { return fallback() }
            fields["llm_fallback"] = .string(problem)
            fields["llm_attempts"] = .integer(Int64(attempts))
            return .object(fields)
        }
    }

    /// `answer` if it fits in a saved step (`LeadStage.maxSavedBytes` of JSON); else the stage
    /// fails, naming where the answer came from and its size, and nothing of it is saved (a step
    /// that large would be read back by every later run of the lead).
    static func bounded(_ stage: LeadStage, _ answer: JSONValue, from source: String) throws(OrchestratorError) -> JSONValue {
        guard let size = try? answer.serializedCount() else {
            throw .stage(stage, "\(source) answered JSON that cannot be saved (a number that is not finite)")
        }
        guard size > LeadStage.maxSavedBytes else { return answer }
        let mebibytes = (Double(size) / 1_048_576 * 10).rounded() / 10
        throw .stage(
            stage,
            "\(source) answered \(mebibytes) MiB (\(size) bytes of JSON); a stage saves at most \(LeadStage.maxSavedBytes >> 20) MiB, "
                + "so the answer was not saved")
    }

    static func excerpt(_ value: JSONValue) -> String {
        let text = (try? value.jsonString()) ?? value.typeName
        return text.count > 200 ? String(text.prefix(200)) + "…" : text
    }
}

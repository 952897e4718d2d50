import CurlHTTP
import EndpointClient
@testable import Orchestrator
import StubLLM
import Synchronization
import Testing
import TestSupport
import WorkerJSON
import WorkerRuntime

@Suite("JSON answers from an LLM: schema checks, re-asks, fallback", .defaultPass)
struct StructuredAnswerTests {
    private let request = ChatRequest(messages: [.init(role: "user", content: "lead")], schemaName: "lead_qualification", schema: Prompts.qualificationSchema)
    private let valid = #"{"score": 0.7, "reasons": ["fits"], "bant": {"budget": "b", "authority": "a", "need": "n", "timeline": "t"}}"#

    @Test("Answers are checked against the schema (WorkerJSON's checker); the problem names the path")
    func schemaCheck() {
        func problem(_ json: String) -> String? {
            if case .failure(let problem) = StructuredAnswer.check(
                ChatAnswer(content: json, refusal: nil, finishReason: "stop"), schema: Prompts.qualificationSchema) { return problem.description }
            return nil
        }
        let bant = #""bant": {"budget": "", "authority": "", "need": "", "timeline": ""}"#
        #expect(problem(valid) == nil)
        #expect(problem(#"{"score": 1.7, "reasons": ["x"], "# + bant + "}") == "$.score: must be at most 1")
        #expect(problem(#"{"score": 0.5, "reasons": [], "# + bant + "}") == "$.reasons: needs at least 1 item(s), got 0")
        #expect(problem(#"{"score": 0.5, "reasons": ["x"]}"#) == "$.bant: is required")
        #expect(problem(#"{"score": "high", "reasons": ["x"], "bant": {}}"#) == "$.bant.authority: is required")
        #expect(problem(#"{"score": 0.5, "reasons": [3], "# + bant + "}") == "$.reasons[0]: expected a string, got number")
        #expect(problem(#"{"score": 0.5, "reasons": ["x"], "extra": 1, "# + bant + "}")?.hasPrefix("$.extra: is not a known argument") == true)
        #expect(problem(#"{"score": 0.5, "reasons": ["x"], "# + bant + "} trailing")?.contains("not JSON") == true)
    }

    @Test("Invalid, then valid: asked again with the problem in the conversation")
    func reaskThenValid() async throws {
        let model = ScriptedModel(json: [#"{"score": 1.7, "reasons": ["x"]}"#, "```json\n" + valid + "\n```"])
        let outcome = try await StructuredAnswer.ask(model, request, deadline: Fixtures.soon)
        guard case .valid(let value, let attempts) = outcome else {
            Issue.record("expected a valid answer, got \(outcome)")
            return
        }
        #expect(value["score"] == 0.7 && attempts == 2)
        let second = try #require(model.requests.last)
        #expect(second.messages.count == 3)
        #expect(second.messages[2].content.contains("$.bant: is required"), "\(second.messages[2].content)")
    }

    @Test(
        "Cut-off, refused, prose and empty answers are problems",
        arguments: [
            (ChatAnswer(content: "{\"score\": 0.", refusal: nil, finishReason: "length"), "finish_reason length"),
            (ChatAnswer(content: nil, refusal: "No.", finishReason: "stop"), "refused"),
            (ChatAnswer(content: "Looks good!", refusal: nil, finishReason: "stop"), "not JSON"),
            (ChatAnswer(content: "", refusal: nil, finishReason: "stop"), "no content"),
            (ChatAnswer(content: "{}", refusal: nil, finishReason: "content_filter"), "content filter"),
        ])
    func problems(_ answer: ChatAnswer, _ message: String) async throws {
        let model = ScriptedModel([answer])
        let outcome = try await StructuredAnswer.ask(model, request, deadline: Fixtures.soon)
        guard case .invalid(let problem, let attempts) = outcome else {
            Issue.record("must stay invalid")
            return
        }
        #expect(problem.contains(message) && attempts == 3 && model.requests.count == 3)
    }

    @Test("Qualification falls back to the rules after three invalid answers, and says so")
    func fallback() async throws {
        let pipeline = LeadPipeline(configuration: Fixtures.configuration(), llm: ScriptedModel(json: ["nope"]), context7: nil, memory: nil)
        let result = try await pipeline.qualify(Fixtures.lead(Fixtures.strongLead), context: [:], deadline: Fixtures.soon, logger: Fixtures.logger)
        #expect(result["method"] == "rules" && result["llm_attempts"] == 3 && result["score"] == 1.0)
        #expect(result["llm_fallback"]?.stringValue?.contains("not JSON") == true)
    }

    @Test("Over HTTP: the request OpenAI and vLLM take; 503s retried; 401 names LLM_API_KEY; stub behaviours end to end")
    func overHTTP() async throws {
        let stub = StubLLM()
        try await stub.run { base in
            let http = CurlHTTPClient(name: "llm-test")
            defer { Task { await http.shutdown() } }
            func model(_ name: String, retries: Int = 2) -> OpenAIChatModel {
                OpenAIChatModel(
                    configuration: LLMConfiguration(baseURL: base, model: name, apiKey: "sk-test"), http: http, retries: retries,
                    backoff: PollSchedule(initial: .milliseconds(5), factor: 2, cap: .milliseconds(20)))
            }
            let answer = try await model("stub").complete(request, deadline: Fixtures.soon)
            #expect(answer.finishReason == "stop" && answer.content?.contains("\"score\"") == true)
            let sent = try #require(stub.requests.withLock { $0.last })
            #expect(sent["response_format"]?["type"] == "json_schema" && sent["response_format"]?["json_schema"]?["strict"] == true)
            #expect(sent["response_format"]?["json_schema"]?["name"] == "lead_qualification" && sent["temperature"] == 0)

            let before = stub.callCount
            _ = try await model("flaky").complete(request, deadline: Fixtures.soon)
            #expect(stub.callCount - before <= 2)

            await #expect { _ = try await model("unauthorized").complete(request, deadline: Fixtures.soon) } throws: { "\($0)".contains("LLM_API_KEY") && "\($0)".contains("401") }
            await #expect { _ = try await model("down", retries: 1).complete(request, deadline: Fixtures.soon) } throws: { "\($0)".contains("failed 2 times") }

            let reasked = try await StructuredAnswer.ask(model("invalid-once"), request, deadline: Fixtures.soon)
            #expect(reasked == .valid(try JSONValue.parse(Array(#"{"score": 0.85, "reasons": ["senior buyer with clear intent"], "bant": {"budget": "stated", "authority": "decision maker", "need": "evaluating", "timeline": "this quarter"}}"#.utf8)), attempts: 2))
            let truncated = try await StructuredAnswer.ask(model("truncated"), request, deadline: Fixtures.soon)
            if case .invalid(let problem, _) = truncated { #expect(problem.contains("length")) } else { Issue.record("truncated must stay invalid") }
        }
    }

    @Test("LLM settings: LLM_MODEL required with LLM_BASE_URL; keys fall back to the endpoint key; bad values named")
    func settings() throws {
        #expect(try LLMConfiguration.fromEnvironment([:]) == nil)
        let configuration = try #require(try LLMConfiguration.fromEnvironment([
            "LLM_BASE_URL": "https://api.runpod.ai/v2/abc/openai/v1/", "LLM_MODEL": "qwen", "RUNPOD_API_KEY": "rk",
        ]))
        #expect(configuration.baseURL == "https://api.runpod.ai/v2/abc/openai/v1" && configuration.apiKey == "rk")
        for env in [["LLM_BASE_URL": "http://x"], ["LLM_BASE_URL": "ftp://x", "LLM_MODEL": "m"], ["LLM_BASE_URL": "http://x", "LLM_MODEL": "m", "LLM_TIMEOUT": "-1"]] {
            #expect(throws: ConfigurationError.self) { _ = try LLMConfiguration.fromEnvironment(env) }
        }
    }
}

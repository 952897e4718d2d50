import HTTPTypes
import Hummingbird
import LoopbackServer
import Logging
import NIOCore
import Synchronization
import WorkerJSON

/// An OpenAI-compatible chat API (`POST /v1/chat/completions`) that answers the orchestrator's
/// JSON schemas (`lead_qualification`, `lead_enrichment`, `growth_strategy`), for its tests, the
/// end-to-end run and the benchmark. The request's `model` picks the behaviour:
///
/// - `stub`: valid answers. A lead whose message mentions a free-mail domain (gmail.com) or
///   `"reject"` scores 0.2, others 0.85;
/// - `invalid-once`: the first answer of a conversation breaks the schema (score 1.7), the one
///   after a re-ask is valid; `not-json-once`: the first is prose, not JSON;
/// - `always-invalid`: never valid; `truncated`: `finish_reason: length`; `refuse`: a refusal;
/// - `flaky`: 503 for every other request; `down`: always 500; `unauthorized`: 401;
/// - `slow-strategy`: valid, but `growth_strategy` answers only after 60 s (a worker can be
///   killed between stages).
///
/// Every answer waits `latency` first. `GET /_stats` returns `{"calls": n}`.
package final class StubLLM: Sendable {
    package let latency: Duration
    private let calls = Atomic<Int>(0)
    /// The requests' bodies, in order (when recording).
    package let requests = Mutex<[JSONValue]>([])
    private let recording: Bool

    package init(latency: Duration = .zero, recording: Bool = true) {
        self.latency = latency
        self.recording = recording
    }

    package var callCount: Int { calls.load(ordering: .relaxed) }

    /// The recorded requests that asked for `schema`.
    package func requests(for schema: String) -> Int {
        requests.withLock { $0.filter { $0["response_format"]?["json_schema"]?["name"]?.stringValue == schema }.count }
    }

    package func router() -> Router<BasicRequestContext> {
        let router = Router()
        router.post("v1/chat/completions") { request, _ in
            var request = request
            let body = try await request.collectBody(upTo: 4 << 20)
            let number = self.calls.add(1, ordering: .relaxed).newValue
            if self.latency > .zero { try await Task.sleep(for: self.latency) }
            guard let parsed = try? JSONValue.parse(body.readableBytesView) else {
                return Self.json(.badRequest, ["error": ["message": "the body is not JSON"]])
            }
            if self.recording { self.requests.withLock { $0.append(parsed) } }
            if parsed["model"] == "slow-strategy", parsed["response_format"]?["json_schema"]?["name"] == "growth_strategy" {
                try await Task.sleep(for: .seconds(60))
            }
            return Self.answer(parsed, number: number)
        }
        router.get("_stats") { _, _ in Self.json(.ok, ["calls": .integer(Int64(self.callCount))]) }
        return router
    }

    static func answer(_ request: JSONValue, number: Int) -> Response {
        let model = request["model"]?.stringValue ?? "stub"
        let messages = request["messages"]?.arrayValue ?? []
        let reasked = messages.contains { $0["role"]?.stringValue == "assistant" }
        let schema = request["response_format"]?["json_schema"]?["name"]?.stringValue ?? ""
        let userText = messages.compactMap { $0["role"]?.stringValue == "user" ? $0["content"]?.stringValue : nil }.joined(separator: "\n")
        switch model {
        case "down": return json(.internalServerError, ["error": ["message": "the model is down"]])
        case "unauthorized": return json(.unauthorized, ["error": ["message": "Incorrect API key provided"]])
        case "flaky" where number % 2 == 1: return json(.serviceUnavailable, ["error": ["message": "overloaded, try again"]])
        case "refuse": return completion(content: nil, refusal: "I can't help with that.", finish: "stop")
        case "truncated": return completion(content: "{\"score\": 0.8, \"reas", refusal: nil, finish: "length")
        case "always-invalid": return completion(content: "{\"score\": 1.7, \"reasons\": []}", refusal: nil, finish: "stop")
        case "invalid-once" where !reasked: return completion(content: "{\"score\": 1.7, \"reasons\": [\"great\"]}", refusal: nil, finish: "stop")
        case "not-json-once" where !reasked: return completion(content: "This lead looks promising!", refusal: nil, finish: "stop")
        default: break
        }
        let weak = contains(userText, "gmail.com") || contains(userText, "\"reject\"")
        let content: JSONValue
        switch schema {
        case "lead_qualification":
            content = [
                "score": .number(weak ? 0.2 : 0.85), "reasons": .array([weak ? "free-mail address, little fit" : "senior buyer with clear intent"]),
                "bant": ["budget": "stated", "authority": weak ? "unclear" : "decision maker", "need": "evaluating", "timeline": "this quarter"],
            ]
        case "lead_enrichment":
            content = [
                "company_summary": "A company that runs AI workloads.", "company_size_band": "201-1000",
                "pain_points": ["GPU costs"], "talking_points": ["pay-per-second serverless GPUs"],
            ]
        case "growth_strategy":
            content = ["priority": "high", "approach": "Executive outreach", "channels": ["email"], "next_steps": ["Book a call"]]
        default:
            content = ["answer": "ok"]
        }
        return completion(content: (try? content.jsonString()) ?? "{}", refusal: nil, finish: "stop")
    }

    /// A byte search: String's own `contains` compares Characters (grapheme breaking), which made
    /// this stub the costliest process in the orchestrator benchmark.
    static func contains(_ text: String, _ word: String) -> Bool {
        let haystack = Array(text.utf8)
        let needle = Array(word.utf8)
        guard needle.count <= haystack.count else { return false }
        return (0...(haystack.count - needle.count)).contains { start in haystack[start..<(start + needle.count)].elementsEqual(needle) }
    }

    static func completion(content: String?, refusal: String?, finish: String) -> Response {
        var message: [String: JSONValue] = ["role": "assistant", "content": content.map { .string($0) } ?? .null]
        if let refusal { message["refusal"] = .string(refusal) }
        return json(.ok, [
            "id": "chatcmpl-stub", "object": "chat.completion", "created": 1, "model": "stub",
            "choices": [["index": 0, "message": .object(message), "finish_reason": .string(finish)]],
            "usage": ["prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20],
        ])
    }

    static func json(_ status: HTTPResponse.Status, _ value: JSONValue) -> Response {
        Response(
            status: status, headers: [.contentType: "application/json"],
            body: .init(byteBuffer: ByteBuffer(bytes: (try? value.serialized()) ?? [])))
    }

    /// Serves on `host:port` (0: a free port) until cancelled; `onListening` gets the port.
    package func serve(host: String = "127.0.0.1", port: Int = 0, onListening: @escaping @Sendable (Int) -> Void) async throws {
        try await LoopbackServer.serve(router(), host: host, port: port, label: "stub-llm", onListening: onListening)
    }

    /// Serves on a free loopback port for the duration of `body`; `base` ends in `/v1`.
    package func run<T: Sendable>(_ body: @Sendable (_ base: String) async throws -> T) async throws -> T {
        try await runOnLoopback(router(), label: "stub-llm") { base in try await body(base + "/v1") }
    }
}

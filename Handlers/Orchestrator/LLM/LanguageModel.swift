import WorkerJSON

/// One chat request that wants a JSON answer matching `schema`.
struct ChatRequest: Sendable, Equatable {
    struct Message: Sendable, Equatable {
        var role: String
        var content: String
    }

    var messages: [Message]
    /// `json_schema.name`: letters, digits, `_` and `-`, at most 64.
    var schemaName: String
    var schema: JSONValue
}

/// What came back: the text (the JSON), a refusal, and why generation stopped.
struct ChatAnswer: Sendable, Equatable {
    var content: String?
    var refusal: String?
    /// `stop`, `length` (cut off: the JSON is incomplete), `content_filter`, `tool_calls`.
    var finishReason: String?
}

/// An LLM behind OpenAI's chat API (tests use stubs). Transport failures and 429/5xx are
/// retried inside; what it throws is final.
protocol LanguageModel: Sendable {
    var name: String { get }
    func complete(_ request: ChatRequest, deadline: ContinuousClock.Instant) async throws -> ChatAnswer
}

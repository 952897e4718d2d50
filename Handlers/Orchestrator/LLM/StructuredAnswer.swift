import WorkerJSON

/// Asking an LLM for JSON that fits a schema: the answer is parsed and checked; a cut-off
/// (`length`), refused, unparsable or non-conforming answer is followed by asking again with what
/// was wrong, at most `reasks` more times. The caller falls back (to the rules) when it stays wrong.
enum StructuredAnswer {
    enum Outcome: Equatable {
        case valid(JSONValue, attempts: Int)
        /// Every answer was wrong; `problem` is the last one's.
        case invalid(problem: String, attempts: Int)
    }

    static let reasks = 2

    static func ask(_ model: any LanguageModel, _ request: ChatRequest, deadline: ContinuousClock.Instant, reasks: Int = reasks) async throws -> Outcome {
        var conversation = request
        var problem = ""
        for attempt in 1...(reasks + 1) {
            let answer = try await model.complete(conversation, deadline: deadline)
            switch check(answer, schema: request.schema) {
            case .success(let value):
                return .valid(value, attempts: attempt)
            case .failure(let failure):
                problem = failure.description
            }
            conversation.messages.append(.init(role: "assistant", content: answer.content ?? answer.refusal ?? ""))
            conversation.messages.append(.init(
                role: "user",
                content: "That answer was not usable: \(problem). Answer again with only a JSON object that matches the schema \(request.schemaName)."))
        }
        return .invalid(problem: problem, attempts: reasks + 1)
    }

    struct Problem: Error, CustomStringConvertible {
        let description: String
    }

    /// The answer's JSON, or what is wrong with it.
    static func check(_ answer: ChatAnswer, schema: JSONValue) -> Result<JSONValue, Problem> {
        if let refusal = answer.refusal, !refusal.isEmpty { return .failure(Problem(description: "the model refused: \(refusal)")) }
        switch answer.finishReason {
        case "length"?: return .failure(Problem(description: "the answer was cut off at the token limit (finish_reason length), so its JSON is incomplete"))
        case "content_filter"?: return .failure(Problem(description: "the answer was withheld by a content filter (finish_reason content_filter)"))
        default: break
        }
        guard let content = answer.content, !content.isEmpty else { return .failure(Problem(description: "the answer had no content")) }
        let value: JSONValue
        do {
            value = try JSONValue.parse(Array(stripFence(content).utf8))
        } catch {
            return .failure(Problem(description: "the answer is not JSON (\(error))"))
        }
        if let problem = JSONSchemaCheck.violation(of: value, against: schema, at: "$") { return .failure(Problem(description: problem)) }
        return .success(value)
    }

    /// Models without constrained decoding often wrap JSON in a Markdown fence.
    static func stripFence(_ text: String) -> Substring {
        var body = text.drop { $0.isWhitespace }
        guard body.hasPrefix("```") else { return Substring(text) }
        body = body.drop { $0 != "\n" }
        while let last = body.last, last.isWhitespace { body.removeLast() }
        if body.hasSuffix("```") { body.removeLast(3) }
        return body
    }
}

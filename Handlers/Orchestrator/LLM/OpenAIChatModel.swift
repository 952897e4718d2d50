import CurlHTTP
import EndpointClient
import WorkerJSON

/// `POST {LLM_BASE_URL}/chat/completions` with `response_format: json_schema` (strict), as OpenAI
/// and vLLM take it. 429 (after `Retry-After`), 5xx and network errors are retried with jittered
/// backoff within the deadline; any other status is an error naming it and the API's message.
struct OpenAIChatModel: LanguageModel {
    let configuration: LLMConfiguration
    let http: CurlHTTPClient
    let retries: Int
    let backoff: PollSchedule

    var name: String { configuration.model }
    /// Chat answers are small; anything larger is refused rather than held.
    static let maxResponseBytes = 8 << 20

    func complete(_ request: ChatRequest, deadline: ContinuousClock.Instant) async throws -> ChatAnswer {
        let body: JSONValue = [
            "model": .string(configuration.model),
            "messages": .array(request.messages.map { ["role": .string($0.role), "content": .string($0.content)] }),
            "response_format": [
                "type": "json_schema",
                "json_schema": ["name": .string(request.schemaName), "schema": request.schema, "strict": true],
            ],
            "temperature": 0, "max_tokens": .integer(Int64(configuration.maxTokens)),
        ]
        var headers: [(name: String, value: String)] = []
        if let key = configuration.apiKey { headers.append(("Authorization", "Bearer \(key)")) }
        let url = configuration.baseURL + "/chat/completions"
        // Errors (saved with the lead, logged) name the URL without its credentials.
        let shown = URLCredentials.redacted(url)
        var failures = 0
        while true {
            let left = deadline - .now
            guard left > .zero else { throw LLMError("\(shown) did not answer before the deadline" + (failures > 0 ? " (\(failures) failed tries)" : "")) }
            var http = try HTTPClientRequest.json(url: url, body: body, headers: headers, timeout: min(configuration.requestTimeout, left))
            http.maxResponseBytes = Self.maxResponseBytes
            let retryReason: String
            var wait: Duration?
            do {
                let response = try await self.http.execute(http)
                if response.status == 200 { return try Self.answer(response.body, url: shown) }
                let message = Self.errorMessage(response.body)
                guard response.status == 429 || response.status >= 500 else {
                    let hint = response.status == 401 || response.status == 403 ? "; check LLM_API_KEY" : response.status == 404 ? "; check LLM_BASE_URL and LLM_MODEL" : ""
                    throw LLMError("\(shown) answered \(response.status): \(message)\(hint)")
                }
                retryReason = "\(response.status): \(message)"
                if response.status == 429, let seconds = response.header("Retry-After").flatMap({ Double($0) }), seconds >= 0, seconds < 3600 {
                    wait = .milliseconds(Int64(seconds * 1000))
                }
            } catch let error as HTTPClientError {
                if error.isCancellation { throw CancellationError() }
                if error.isResponseTooLarge { throw LLMError("\(shown) answered with more than \(Self.maxResponseBytes >> 20) MB") }
                retryReason = "\(error)"
            }
            failures += 1
            let pause = wait ?? backoff.delay(attempt: failures - 1)
            guard failures <= retries, ContinuousClock.now + pause < deadline else {
                throw LLMError("\(shown) failed \(failures) times; the last: \(retryReason)")
            }
            try await Task.sleep(for: pause)
        }
    }

    static func answer(_ body: [UInt8], url: String) throws -> ChatAnswer {
        guard let parsed = try? JSONValue.parse(body), let choice = parsed["choices"]?[0], let message = choice["message"] else {
            throw LLMError("\(url) answered 200 without choices[0].message: \(excerpt(body))")
        }
        return ChatAnswer(content: message["content"]?.stringValue, refusal: message["refusal"]?.stringValue, finishReason: choice["finish_reason"]?.stringValue)
    }

    static func errorMessage(_ body: [UInt8]) -> String {
        if let parsed = try? JSONValue.parse(body), let message = parsed["error"]?["message"]?.stringValue ?? parsed["message"]?.stringValue {
            return message
        }
        return excerpt(body)
    }

    static func excerpt(_ body: [UInt8]) -> String {
        let text = String(decoding: body.prefix(200), as: UTF8.self)
        return body.count > 200 ? text + "…" : text
    }
}

/// An LLM call that failed for good.
struct LLMError: Error, CustomStringConvertible, Equatable {
    let description: String
    init(_ description: String) { self.description = description }
}

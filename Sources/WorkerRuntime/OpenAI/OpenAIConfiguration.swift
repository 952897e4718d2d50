/// Where the runtime forwards OpenAI-compatible jobs (`OPENAI_BASE_URL`, …).
public struct OpenAIConfiguration: Sendable, Equatable {
    /// The upstream server, e.g. `http://127.0.0.1:8000` or `https://api.openai.com/v1`.
    public var baseURL: String
    public var apiKey: String?
    /// Limit of a whole request (`OPENAI_TIMEOUT`, seconds).
    public var timeout: Duration = .seconds(600)
    public var connectTimeout: Duration = .seconds(10)
    /// Longest silence allowed in the middle of a stream (`OPENAI_IDLE_TIMEOUT`, seconds).
    public var idleTimeout: Duration = .seconds(60)
    /// Stream chunks arriving within this window after a relayed one are sent together.
    public var coalesceWindow: Duration = .milliseconds(50)

    public init(baseURL: String, apiKey: String? = nil) {
        self.baseURL = baseURL
        self.apiKey = apiKey
    }

    /// The upstream URL of a route such as `/v1/chat/completions`; a base URL that already ends
    /// in `/v1` does not get a second one.
    public func url(for route: String) -> String {
        var base = baseURL
        while base.hasSuffix("/") { base.removeLast() }
        if base.hasSuffix("/v1"), route.hasPrefix("/v1/") || route == "/v1" {
            return base + route.dropFirst(3)
        }
        return base + route
    }
}

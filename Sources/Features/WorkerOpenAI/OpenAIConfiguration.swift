/// Where the runtime forwards OpenAI-compatible jobs (`OPENAI_BASE_URL`, …).
package struct OpenAIConfiguration: Sendable, Equatable {
    /// The upstream server, e.g. `http://127.0.0.1:8000` or `https://api.openai.com/v1`.
    package var baseURL: String
    package var apiKey: String?
    /// Limit of a whole request (`OPENAI_TIMEOUT`, seconds).
    package var timeout: Duration = .seconds(600)
    package var connectTimeout: Duration = .seconds(10)
    /// Longest silence allowed in the middle of a stream (`OPENAI_IDLE_TIMEOUT`, seconds).
    package var idleTimeout: Duration = .seconds(60)
    /// Stream chunks arriving within this window after a relayed one are sent together.
    package var coalesceWindow: Duration = .milliseconds(50)

    package init(baseURL: String, apiKey: String? = nil) {
        self.baseURL = baseURL
        self.apiKey = apiKey
    }

    /// The upstream URL of a route such as `/v1/chat/completions`; a base URL that already ends
    /// in `/v1` does not get a second one.
    package func url(for route: String) -> String {
        var base = baseURL
        while base.hasSuffix("/") { base.removeLast() }
        if base.hasSuffix("/v1"), route.hasPrefix("/v1/") || route == "/v1" {
            return base + route.dropFirst(3)
        }
        return base + route
    }
}

import WorkerRuntime

extension WorkerFeature {
    /// Forwards jobs carrying `openai_route` (RunPod's `/openai/v1/*` routes, in every mode) to an
    /// OpenAI-compatible server when `OPENAI_BASE_URL` is set (`OPENAI_API_KEY`, `OPENAI_TIMEOUT`,
    /// `OPENAI_IDLE_TIMEOUT`); other jobs reach the handler. Without the variable it does nothing.
    public static func openAIPassthrough() -> WorkerFeature {
        WorkerFeature(
            name: "openai passthrough",
            configure: { setup throws(ConfigurationError) in FeatureConfiguration(settings: try OpenAIConfiguration.read(setup.environment)) },
            decorate: { handler, context in
                guard let upstream = context.settings[OpenAIConfiguration.self] else { return handler }
                return OpenAIPassthroughHandler(inner: handler, upstream: upstream, client: context.httpClient)
            })
    }
}

extension OpenAIConfiguration {
    /// `OPENAI_BASE_URL` and its companions; nil when it is unset. The companions are checked
    /// either way: set wrong beside a missing base URL, they would pass unnoticed until it is added.
    package static func read(_ env: EnvironmentReader) throws(ConfigurationError) -> OpenAIConfiguration? {
        let timeout = try env.positiveSeconds("OPENAI_TIMEOUT")
        let idleTimeout = try env.positiveSeconds("OPENAI_IDLE_TIMEOUT")
        let key = env.string("OPENAI_API_KEY")
        if let key, key.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) {
            // It goes into a header: a line break would fail every request (never split it).
            throw .invalidValue("OPENAI_API_KEY", "(hidden)", expected: "a key without line breaks or control characters")
        }
        guard let base = env.string("OPENAI_BASE_URL") else { return nil }
        try EnvironmentReader.checkHTTPURL(base, variable: "OPENAI_BASE_URL", original: base)
        var openAI = OpenAIConfiguration(baseURL: base, apiKey: key)
        if let timeout { openAI.timeout = timeout }
        if let idleTimeout { openAI.idleTimeout = idleTimeout }
        return openAI
    }
}

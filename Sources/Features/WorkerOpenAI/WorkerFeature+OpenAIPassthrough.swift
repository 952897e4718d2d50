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
    /// `OPENAI_BASE_URL` and its companions; nil when it is unset.
    package static func read(_ env: EnvironmentReader) throws(ConfigurationError) -> OpenAIConfiguration? {
        guard let base = env.string("OPENAI_BASE_URL") else { return nil }
        try EnvironmentReader.checkHTTPURL(base, variable: "OPENAI_BASE_URL", original: base)
        func positiveSeconds(_ name: String) throws(ConfigurationError) -> Duration? {
            try env.seconds(name, in: 0.001...31_536_000, expected: "a positive number of seconds, at most 31536000 (a year)")
        }
        var openAI = OpenAIConfiguration(baseURL: base, apiKey: env.string("OPENAI_API_KEY"))
        if let seconds = try positiveSeconds("OPENAI_TIMEOUT") { openAI.timeout = seconds }
        if let seconds = try positiveSeconds("OPENAI_IDLE_TIMEOUT") { openAI.idleTimeout = seconds }
        return openAI
    }
}

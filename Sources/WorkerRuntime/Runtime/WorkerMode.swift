/// What a worker process does, decided from the environment and flags alone (section 1.1).
public enum WorkerMode: Sendable, Equatable {
    /// The production queue worker against the platform's worker API.
    case queue(WorkerConfiguration.PlatformEndpoints)
    /// One job from `--test-input` (or `./test_input.json` when nil), then exit.
    case oneShot(testInput: String?)

    /// `--test-input` wins; else the platform's variables select the queue worker; else a
    /// one-shot run of `./test_input.json`.
    public static func resolve(arguments: WorkerArguments, configuration: WorkerConfiguration) -> WorkerMode {
        if let input = arguments.testInput { return .oneShot(testInput: input) }
        if let platform = configuration.platform { return .queue(platform) }
        return .oneShot(testInput: nil)
    }
}

import EndpointAPI
import EndpointClient
import WorkerJSON

/// Another worker's endpoint, run as a job that is waited for (tests use stubs).
protocol JobEndpoint: Sendable {
    var name: String { get }
    /// The output of a job with `input` that completed within `deadline`; anything else throws.
    func output(of input: JSONValue, within deadline: Duration) async throws -> JSONValue
}

extension EndpointClient: JobEndpoint {
    /// The endpoint's URL without credentials: stage errors (saved, logged) name it.
    var name: String { endpoint.description }

    func output(of input: JSONValue, within deadline: Duration) async throws -> JSONValue {
        // Most downstream jobs end within /runsync's wait; polls (from 50 ms) only cover the rest.
        try await output(
            of: JobRequest(input: input, policy: JobPolicy(executionTimeout: deadline)), within: deadline,
            schedule: PollSchedule(initial: .milliseconds(50), factor: 1.5, cap: .seconds(2), jitter: 0.2))
    }
}

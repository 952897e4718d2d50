import EndpointClient
import Logging

/// Retries of a stage's downstream call: a failure is tried again after a jittered pause, up to
/// `retries` times, as long as the pause ends before the deadline; then the stage fails with the
/// last error. Input errors and cancellation are never retried.
struct Retrying: Sendable {
    let retries: Int
    let schedule: PollSchedule

    func run<T: Sendable>(
        _ stage: LeadStage, _ what: String, deadline: ContinuousClock.Instant, logger: Logger,
        _ body: @Sendable (_ within: Duration) async throws -> T
    ) async throws -> T {
        var failures = 0
        while true {
            let left = deadline - .now
            guard left > .zero else { throw OrchestratorError.stage(stage, "\(what): the deadline passed before it could finish") }
            do {
                return try await body(left)
            } catch is CancellationError {
                throw CancellationError()
            } catch let error as OrchestratorError {
                throw error
            } catch {
                failures += 1
                let pause = schedule.delay(attempt: failures - 1)
                guard failures <= retries, ContinuousClock.now + pause < deadline else {
                    let tries = failures == 1 ? "" : " after \(failures) tries"
                    throw OrchestratorError.stage(stage, "\(what) failed\(tries): \(error)")
                }
                logger.warning("\(stage.rawValue): \(what) failed (try \(failures) of \(retries + 1)), again in \(pause): \(error)")
                try await Task.sleep(for: pause)
            }
        }
    }
}

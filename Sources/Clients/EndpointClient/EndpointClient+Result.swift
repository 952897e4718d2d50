import EndpointAPI
import WorkerJSON

extension EndpointClient {
    /// Runs `job` and waits for its final status, whatever it is (`COMPLETED`, `FAILED`,
    /// `CANCELLED`, `TIMED_OUT`): `/runsync` first (most jobs finish within its wait), then
    /// `/status` polls spaced by `schedule`. A poll that fails for a transient reason (network,
    /// 429, 5xx) is tried again at the next one. When `deadline` passes first, the job is
    /// cancelled on the endpoint and the call throws (`isDeadline`); a cancelled task cancels the
    /// job as well. A submission refused with 429, or that never reached the endpoint, is sent
    /// again within the deadline; any other failure to submit throws, since the job may exist.
    /// `syncWait` caps how long `/runsync` holds (by default the deadline, at most 90 s).
    public func result(
        of job: JobRequest, within deadline: Duration, schedule: PollSchedule = PollSchedule(), syncWait: Duration? = nil
    ) async throws -> JobStatusReport {
        let until = ContinuousClock.now + deadline
        func remaining() -> Duration { until - .now }

        var submitted: JobStatusReport?
        var attempt = 0
        while submitted == nil {
            let wait = min(max(remaining(), .seconds(1)), syncWait ?? .seconds(90))
            do {
                submitted = try await runSync(job, wait: wait)
            } catch let error as EndpointClientError where error.httpStatus == 429 || error.wasNotSent {
                let pause = schedule.delay(attempt: attempt)
                attempt += 1
                guard pause < remaining() else {
                    throw EndpointClientError.deadline(endpoint, nil, "the job could not be submitted within \(deadline): \(error.reason)")
                }
                try await Task.sleep(for: pause)
            }
        }
        var report = submitted!
        if report.status.isFinal { return report }

        attempt = 0
        var lastFailure: EndpointClientError?
        while true {
            let pause = schedule.delay(attempt: attempt)
            attempt += 1
            guard pause < remaining() else { break }
            do {
                try await Task.sleep(for: pause)
            } catch {
                await cancelQuietly(report.id)
                throw error
            }
            do {
                report = try await status(report.id)
                lastFailure = nil
                if report.status.isFinal { return report }
            } catch let error as EndpointClientError where error.isTransient {
                lastFailure = error
            } catch is CancellationError {
                await cancelQuietly(report.id)
                throw CancellationError()
            }
        }
        await cancelQuietly(report.id)
        let last = lastFailure.map { "; the last poll failed: \($0.reason)" } ?? "; it was \(report.status.rawValue)"
        throw EndpointClientError.deadline(endpoint, report.id, "the job did not finish within \(deadline) and was cancelled\(last)")
    }

    /// The output of a job that completed; any other final status throws, with the job's error.
    public func output(
        of job: JobRequest, within deadline: Duration, schedule: PollSchedule = PollSchedule(), syncWait: Duration? = nil
    ) async throws -> JSONValue {
        let report = try await result(of: job, within: deadline, schedule: schedule, syncWait: syncWait)
        guard report.status == .completed else {
            throw EndpointClientError.jobEnded(endpoint, report)
        }
        return report.output ?? .null
    }

    /// Best effort, and not cancelled with the caller: the job should not run on unasked.
    private func cancelQuietly(_ id: String) async {
        let endpoint = self
        await Task.detached { _ = try? await endpoint.cancel(id) }.value
    }
}

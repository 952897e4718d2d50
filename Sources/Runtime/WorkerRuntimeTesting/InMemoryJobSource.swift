import Synchronization
import WorkerJSON
import WorkerRuntime

/// The platform in memory, for testing the loop and handlers without sockets: queue jobs or
/// scripted job-take answers, request stops, and read back everything the worker posted.
package final class InMemoryJobSource: JobSource {
    package struct Post: Sendable, Equatable {
        package enum Kind: Sendable, Equatable { case result(isStream: Bool), chunk }
        package let kind: Kind
        package let jobID: String
        package let body: JSONValue
        package init(kind: Kind, jobID: String, body: JSONValue) {
            self.kind = kind
            self.jobID = jobID
            self.body = body
        }
    }

    package struct Take: Sendable, Equatable {
        package let count: Int
        package let jobInProgress: Bool
        package init(count: Int, jobInProgress: Bool) {
            self.count = count
            self.jobInProgress = jobInProgress
        }
    }

    private struct State {
        var scripted: [JobTakeOutcome] = []
        var jobs: [JSONValue] = []
        var takes: [Take] = []
        var posts: [Post] = []
        var resultOutcomes: [DeliveryOutcome] = []
        var jobResultOutcomes: [String: [DeliveryOutcome]] = [:]
        var stops: [String] = []
        var takeWaiter: CheckedContinuation<Void, Never>?
        var stopWaiter: CheckedContinuation<Void, Never>?
    }

    private let state = Mutex(State())
    private let stopChannel: Bool

    package init(stopChannel: Bool = true) {
        self.stopChannel = stopChannel
    }

    // MARK: Scripting

    /// Queues job objects (valid or not): job-take hands out as many as it is asked for.
    package func enqueue(_ jobs: JSONValue...) { enqueue(jobs) }

    package func enqueue(_ jobs: [JSONValue]) {
        let waiter = state.withLock { state in
            state.jobs.append(contentsOf: jobs)
            defer { state.takeWaiter = nil }
            return state.takeWaiter
        }
        waiter?.resume()
    }

    /// The next job-take calls answer these, in order, before any queued job.
    package func script(_ outcomes: JobTakeOutcome...) {
        let waiter = state.withLock { state in
            state.scripted.append(contentsOf: outcomes)
            defer { state.takeWaiter = nil }
            return state.takeWaiter
        }
        waiter?.resume()
    }

    /// The next job-done posts answer these, in order; then they are delivered.
    package func scriptResultOutcomes(_ outcomes: DeliveryOutcome...) {
        state.withLock { $0.resultOutcomes.append(contentsOf: outcomes) }
    }

    /// The next job-done posts for that job answer these, in order (before the shared script).
    package func scriptResultOutcomes(for jobID: String, _ outcomes: DeliveryOutcome...) {
        state.withLock { $0.jobResultOutcomes[jobID, default: []].append(contentsOf: outcomes) }
    }

    /// Sends these ids on the stop channel.
    package func requestStop(_ ids: String...) {
        let waiter = state.withLock { state in
            state.stops.append(contentsOf: ids)
            defer { state.stopWaiter = nil }
            return state.stopWaiter
        }
        waiter?.resume()
    }

    // MARK: What the worker did

    package var posts: [Post] { state.withLock { $0.posts } }
    package var takes: [Take] { state.withLock { $0.takes } }

    /// Final results (job-done posts that are not progress updates).
    package var results: [Post] {
        posts.filter { post in
            if case .result = post.kind { return post.body["status"] != "IN_PROGRESS" }
            return false
        }
    }

    /// Waits until `count` final results were posted, or fails after `timeout`.
    package func waitForResults(_ count: Int, timeout: Duration = .seconds(10)) async throws -> [Post] {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let results = self.results
            if results.count >= count { return results }
            try await Task.sleep(for: .milliseconds(5))
        }
        throw TimeoutError(what: "\(count) results (got \(results.count))", timeout: timeout)
    }

    // MARK: JobSource

    package func takeJobs(count: Int, jobInProgress: Bool) async -> JobTakeOutcome {
        while !Task.isCancelled {
            let answer = state.withLock { state -> JobTakeOutcome? in
                if !state.scripted.isEmpty {
                    state.takes.append(Take(count: count, jobInProgress: jobInProgress))
                    return state.scripted.removeFirst()
                }
                guard !state.jobs.isEmpty else { return nil }
                state.takes.append(Take(count: count, jobInProgress: jobInProgress))
                let taken = Array(state.jobs.prefix(count))
                state.jobs.removeFirst(taken.count)
                return .jobs(taken)
            }
            if let answer { return answer }
            // Long-poll like the platform: hold until a job arrives or the caller is cancelled.
            await longPoll(\.takeWaiter) { !$0.jobs.isEmpty || !$0.scripted.isEmpty }
        }
        return .noJob
    }

    package func pollStopRequests() async -> StopPollOutcome? {
        guard stopChannel else { return nil }
        while !Task.isCancelled {
            let ids = state.withLock { state -> [String] in
                defer { state.stops.removeAll() }
                return state.stops
            }
            if !ids.isEmpty { return .stop(ids) }
            await longPoll(\.stopWaiter) { !$0.stops.isEmpty }
        }
        return .nothing
    }

    /// Parks the caller in `slot` until `ready` holds (whoever changes the state resumes it) or the
    /// calling task is cancelled.
    private func longPoll(
        _ slot: any WritableKeyPath<State, CheckedContinuation<Void, Never>?> & Sendable, until ready: (State) -> Bool
    ) async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let resumeNow = state.withLock { state -> Bool in
                    if ready(state) || Task.isCancelled { return true }
                    state[keyPath: slot] = continuation
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            let waiter = state.withLock { state in
                defer { state[keyPath: slot] = nil }
                return state[keyPath: slot]
            }
            waiter?.resume()
        }
    }

    package func postResult(_ body: ResultPayload, jobID: String, isStream: Bool) async -> DeliveryOutcome {
        record(.result(isStream: isStream), jobID: jobID, body: body.bytes)
        return state.withLock { state in
            if var scripted = state.jobResultOutcomes[jobID], !scripted.isEmpty {
                let outcome = scripted.removeFirst()
                state.jobResultOutcomes[jobID] = scripted
                return outcome
            }
            return state.resultOutcomes.isEmpty ? .delivered : state.resultOutcomes.removeFirst()
        }
    }

    package func postChunk(_ body: ResultPayload, jobID: String) async -> DeliveryOutcome {
        record(.chunk, jobID: jobID, body: body.bytes)
        return .delivered
    }

    private func record(_ kind: Post.Kind, jobID: String, body: [UInt8]) {
        let parsed = (try? JSONValue.parse(body)) ?? .string(String(decoding: body, as: UTF8.self))
        state.withLock { $0.posts.append(Post(kind: kind, jobID: jobID, body: parsed)) }
    }
}

import EndpointAPI
import EndpointClient
import Synchronization
import WorkerJSON
@testable import Gateway

/// An upstream whose answers a test scripts: each `/runsync` takes the next behaviour (the last
/// repeats); every call is recorded.
final class ScriptedUpstream: UpstreamJobs {
    enum Behaviour: Sendable {
        case complete
        /// Echoes after `polls` status calls answering IN_PROGRESS.
        case completeAfterPolls(Int)
        case fail(String)
        case timedOut
        case http(Int)
        case refused
        /// The answer is lost after sending (a reset mid-response).
        case lost
        /// Holds the call until cancelled.
        case hang
        /// For `/run` + `/stream`: these batches of chunks, one per poll, then COMPLETED (or,
        /// with `failing`, FAILED after them).
        case chunks([[JSONValue]], failing: Bool)
    }

    struct State {
        var script: [Behaviour]
        var sent: [JobRequest] = []
        /// The headers each submission came with.
        var headers: [[String: String]] = []
        var cancelled: [String] = []
        var polls: [String: Int] = [:]
        var streams: [String: (batches: [[JSONValue]], failing: Bool)] = [:]
        var healthy = true
        var queued = 0
        var workers = 1
    }

    let name: String
    let state: Mutex<State>
    static let endpoint = try! Endpoint("http://127.0.0.1:9/v2/test", apiKey: nil)

    init(_ name: String, _ script: Behaviour...) {
        self.name = name
        state = Mutex(State(script: script.isEmpty ? [.complete] : script))
    }

    var calls: Int { state.withLock { $0.sent.count } }
    var cancelled: [String] { state.withLock { $0.cancelled } }
    var sent: [JobRequest] { state.withLock { $0.sent } }
    var headers: [[String: String]] { state.withLock { $0.headers } }

    /// Records a submission; its behaviour (the script's next, the last repeating) and job id.
    private func next(_ job: JobRequest, headers: [(name: String, value: String)]) -> (Behaviour, String) {
        let (behaviour, number) = state.withLock { state in
            state.sent.append(job)
            state.headers.append(Dictionary(headers.map { ($0.name, $0.value) }, uniquingKeysWith: { $1 }))
            let behaviour = state.script.count > 1 ? state.script.removeFirst() : state.script[0]
            return (behaviour, state.sent.count)
        }
        return (behaviour, "\(name)-\(number)")
    }

    func runSync(_ job: JobRequest, wait: Duration, timeout: Duration, headers: [(name: String, value: String)]) async throws -> JobStatusReport {
        let (behaviour, id) = next(job, headers: headers)
        switch behaviour {
        case .complete: return JobStatusReport(id: id, status: .completed, output: ["by": .string(name), "input": job.input])
        case .completeAfterPolls(let polls):
            state.withLock { $0.polls[id] = polls }
            return JobStatusReport(id: id, status: .inProgress)
        case .fail(let message): return JobStatusReport(id: id, status: .failed, error: message)
        case .timedOut: return JobStatusReport(id: id, status: .timedOut, error: "timed out")
        case .http(let status): throw EndpointClientError.http(Self.endpoint, nil, status: status, "answered HTTP \(status)")
        case .refused: throw EndpointClientError.transport(Self.endpoint, nil, "connection refused", notSent: true)
        case .lost: throw EndpointClientError.transport(Self.endpoint, nil, "connection reset while reading the answer", notSent: false)
        case .hang:
            // As libcurl does: the call ends at its timeout, the request having been sent.
            try await Task.sleep(for: timeout)
            throw EndpointClientError.transport(Self.endpoint, nil, "Operation timed out", notSent: false)
        case .chunks: return JobStatusReport(id: id, status: .completed, output: ["by": .string(name), "input": job.input])
        }
    }

    func run(_ job: JobRequest, timeout: Duration, headers: [(name: String, value: String)]) async throws -> JobStatusReport {
        let (behaviour, id) = next(job, headers: headers)
        switch behaviour {
        case .chunks(let batches, let failing): state.withLock { $0.streams[id] = (batches, failing) }
        case .http(let status): throw EndpointClientError.http(Self.endpoint, nil, status: status, "answered HTTP \(status)")
        case .refused: throw EndpointClientError.transport(Self.endpoint, nil, "connection refused", notSent: true)
        default: state.withLock { $0.streams[id] = ([], false) }
        }
        return JobStatusReport(id: id, status: .inQueue)
    }

    func stream(_ id: String) async throws -> (status: JobStatus, outputs: [JSONValue]) {
        state.withLock { state in
            guard var entry = state.streams[id] else { return (.completed, []) }
            guard !entry.batches.isEmpty else { return (entry.failing ? .failed : .completed, []) }
            let batch = entry.batches.removeFirst()
            state.streams[id] = entry
            return (.inProgress, batch)
        }
    }

    func status(_ id: String) async throws -> JobStatusReport {
        let left = state.withLock { state -> Int in
            let left = (state.polls[id] ?? 0) - 1
            state.polls[id] = left
            return left
        }
        return left > 0 ? JobStatusReport(id: id, status: .inProgress) : JobStatusReport(id: id, status: .completed, output: ["by": .string(name), "polled": true])
    }

    func cancel(_ id: String) async throws {
        state.withLock { $0.cancelled.append(id) }
    }

    func health(timeout: Duration) async throws -> JSONValue {
        let (healthy, queued, workers) = state.withLock { ($0.healthy, $0.queued, $0.workers) }
        guard healthy else { throw EndpointClientError.transport(Self.endpoint, nil, "connection refused", notSent: true) }
        return ["jobs": ["inQueue": .integer(Int64(queued)), "inProgress": 0], "workers": ["idle": .integer(Int64(workers)), "running": 0]]
    }
}

import EndpointAPI
import Synchronization
import WorkerEndpointServer
import WorkerJSON
import WorkerRuntime

/// The job path a call runs on: the endpoint server's, so a call shares `/run`'s queue,
/// concurrency, execution timeout, metrics and job-id logging.
protocol MCPJobs: Sendable {
    /// Queues the job; its progress, chunks and final report come as events.
    func start(_ input: JSONValue) async throws(APIError) -> (id: String, events: AsyncStream<JobEvent>)
    /// Queues a job whose only reader is its final report (no progress wanted): /runsync's path,
    /// with the report at once when the job finished on the caller's thread.
    func startSync(_ input: JSONValue) async throws(APIError) -> (id: String, finished: JobStatusReport?)
    func waitForFinal(_ id: String) async -> JobStatusReport?
    func stop(_ id: String)
}

extension EndpointRouteContext: MCPJobs {
    func start(_ input: JSONValue) async throws(APIError) -> (id: String, events: AsyncStream<JobEvent>) {
        // The call's answer is the only reader of its result: nothing is kept afterwards. Its
        // events only become progress notifications (the answer comes from the final report), so
        // a burst keeps the newest.
        try await submitListening(JobRequest(input: input), sync: true, retained: false, newestOnly: true)
    }

    func startSync(_ input: JSONValue) async throws(APIError) -> (id: String, finished: JobStatusReport?) {
        try await submitSync(JobRequest(input: input))
    }

    func waitForFinal(_ id: String) async -> JobStatusReport? {
        // The job's own execution timeout ends it; this bound only guards against a lost wake-up.
        await waitForFinal(id, timeout: .seconds(86_400))
    }

    func stop(_ id: String) {
        stopSoon(id)
    }
}

/// How a call ended: a JSON-RPC message to send (as a value, or already serialized), or
/// cancelled (nothing is owed).
enum MCPCallOutcome: Equatable {
    case message(JSONValue)
    case encoded([UInt8])
    case cancelled

    /// The message to send, serialized; nil when cancelled.
    var bytes: [UInt8]? {
        switch self {
        case .message(let value): (try? value.serialized()) ?? (try? MCPError.internalError("the answer could not be encoded").message(id: .null).serialized())
        case .encoded(let bytes): bytes
        case .cancelled: nil
        }
    }
}

/// How a call is stopped: by the client (`notifications/cancelled`, hanging up) or by the server
/// shutting down. Stopping the job, rather than a task, lets the call run on the request's own
/// task: no task is made per call.
final class MCPCallCancellation: Sendable {
    private struct State {
        var jobID: String?
        var cancelled = false
    }

    private let state = Mutex(State())
    private let jobs: any MCPJobs

    init(jobs: any MCPJobs) {
        self.jobs = jobs
    }

    var isCancelled: Bool { state.withLock { $0.cancelled } }

    func cancel() {
        let id = state.withLock { state -> String? in
            state.cancelled = true
            return state.jobID
        }
        if let id { jobs.stop(id) }
    }

    /// Records the call's job; stops it at once if the call was cancelled before it started.
    fileprivate func started(_ id: String) {
        let cancelled = state.withLock { state -> Bool in
            state.jobID = id
            return state.cancelled
        }
        if cancelled { jobs.stop(id) }
    }
}

/// Runs a tool call as a job and turns its events into MCP messages.
struct MCPToolRunner: Sendable {
    let jobs: any MCPJobs

    /// `progress` gets each `notifications/progress` message (only when the call has a token).
    /// `cancellation` stops the job; so does cancelling the calling task.
    func run(
        _ call: MCPToolCall, cancellation: MCPCallCancellation, progress: @escaping @Sendable (JSONValue) async -> Void
    ) async -> MCPCallOutcome {
        if call.progressToken == nil { return await runToFinal(call, cancellation: cancellation) }
        let started: (id: String, events: AsyncStream<JobEvent>)
        do {
            started = try await jobs.start(call.input)
        } catch {
            // The queue's byte budget is full: the agent may try again later.
            return .message(reply(MCPToolResult.failure("the worker is busy: \(error.message); try again shortly", modern: call.modern), to: call))
        }
        cancellation.started(started.id)
        return await withTaskCancellationHandler {
            var tracker = ProgressTracker()
            for await event in started.events {
                switch event {
                case .progress(let value), .chunk(let value):
                    guard let token = call.progressToken else { continue }
                    await progress(tracker.notification(token: token, value: value))
                case .finished(let report):
                    if report.status == .cancelled, cancellation.isCancelled { return .cancelled }
                    return answer(report, to: call)
                }
            }
            if cancellation.isCancelled || Task.isCancelled { return .cancelled }
            return .message(reply(MCPToolResult.failure("the \(call.tool.name) job ended without a result", modern: call.modern), to: call))
        } onCancel: {
            cancellation.cancel()
        }
    }

    /// A call that wants no progress waits as /runsync does, with no event stream: most jobs
    /// finish on the caller's thread and answer at once (an event stream per call cost a tenth of
    /// a `tools/call`'s instructions).
    private func runToFinal(_ call: MCPToolCall, cancellation: MCPCallCancellation) async -> MCPCallOutcome {
        let started: (id: String, finished: JobStatusReport?)
        do throws(APIError) {
            started = try await jobs.startSync(call.input)
        } catch {
            return .message(reply(MCPToolResult.failure("the worker is busy: \(error.message); try again shortly", modern: call.modern), to: call))
        }
        let report: JobStatusReport?
        if let finished = started.finished {
            report = finished
        } else {
            cancellation.started(started.id)
            report = await withTaskCancellationHandler {
                await jobs.waitForFinal(started.id)
            } onCancel: {
                cancellation.cancel()
            }
        }
        guard let report else {
            if cancellation.isCancelled || Task.isCancelled { return .cancelled }
            return .message(reply(MCPToolResult.failure("the \(call.tool.name) job ended without a result", modern: call.modern), to: call))
        }
        if report.status == .cancelled, cancellation.isCancelled { return .cancelled }
        return answer(report, to: call)
    }

    /// The answer to a call whose job ended with `report`.
    private func answer(_ report: JobStatusReport, to call: MCPToolCall) -> MCPCallOutcome {
        if report.status == .completed, call.tool.forwardKey == nil,
            let bytes = try? MCPToolResult.encodedSuccess(report.output ?? .null, id: call.id, modern: call.modern)
        {
            return .encoded(bytes)
        }
        return .message(reply(MCPToolResult.from(report, tool: call.tool.name, modern: call.modern, passedOn: call.tool.forwardKey != nil), to: call))
    }

    private func reply(_ result: JSONValue, to call: MCPToolCall) -> JSONValue {
        ["jsonrpc": "2.0", "id": call.id, "result": result]
    }
}

/// `notifications/progress` from a job's updates: `progress` strictly increases. A handler that
/// reports `{"progress": n, "total": m, "message": …}` is passed through; anything else counts
/// steps, with the update as the message.
struct ProgressTracker {
    private var last = 0.0

    mutating func notification(token: JSONValue, value: JSONValue) -> JSONValue {
        var params: [String: JSONValue] = ["progressToken": token]
        if let reported = value["progress"]?.doubleValue, reported > last {
            last = reported
            if let total = value["total"]?.doubleValue { params["total"] = .number(total) }
        } else {
            last += 1
        }
        params["progress"] = last.rounded() == last && last < 1e15 ? .integer(Int64(last)) : .number(last)
        if let text = value.stringValue ?? value["message"]?.stringValue {
            params["message"] = .string(String(text.prefix(1000)))
        } else if let text = try? value.jsonString() {
            params["message"] = .string(String(text.prefix(1000)))
        }
        return ["jsonrpc": "2.0", "method": "notifications/progress", "params": .object(params)]
    }
}

/// The statuses of RunPod's endpoint API.
public enum JobStatus: String, Sendable, Equatable {
    case inQueue = "IN_QUEUE"
    case inProgress = "IN_PROGRESS"
    case completed = "COMPLETED"
    case failed = "FAILED"
    case cancelled = "CANCELLED"
    case timedOut = "TIMED_OUT"

    public var isFinal: Bool {
        switch self {
        case .inQueue, .inProgress: return false
        case .completed, .failed, .cancelled, .timedOut: return true
        }
    }
}

/// One job of the local endpoint API, from submission to expiry.
struct LocalJob: Sendable {
    let id: String
    /// The request body: `input`, `webhook`, `policy`, … (given to the handler as the job object).
    let request: [String: JSONValue]
    let input: JSONValue
    let webhook: String?
    let executionTimeout: Duration
    let ttl: Duration
    let isSync: Bool
    let createdAt: ContinuousClock.Instant

    var status: JobStatus = .inQueue
    var startedAt: ContinuousClock.Instant?
    var finishedAt: ContinuousClock.Instant?
    var output: JSONValue?
    var error: String?
    /// The last progress update, shown as `output` while the job runs.
    var progress: JSONValue?
    /// Chunks not yet returned by `/stream`.
    var unpolledChunks: [JSONValue] = []
    /// Every chunk, for the final output of a stream that was not aggregated by the handler.
    var allChunks: [JSONValue] = []
    var task: Task<Void, Never>?
    /// Cancelled or timed out by the API: whatever the handler still produces is dropped.
    var stopped = false

    /// Milliseconds from submission to start (or to now while queued).
    func delayTime(now: ContinuousClock.Instant) -> Int64 {
        Self.milliseconds((startedAt ?? finishedAt ?? now) - createdAt)
    }

    /// Milliseconds of execution so far, or in all once finished.
    func executionTime(now: ContinuousClock.Instant) -> Int64 {
        guard let startedAt else { return 0 }
        return Self.milliseconds((finishedAt ?? now) - startedAt)
    }

    /// The cloud's status envelope.
    func envelope(now: ContinuousClock.Instant, workerID: String?) -> JSONValue {
        var body: [String: JSONValue] = [
            "id": .string(id), "status": .string(status.rawValue),
            "delayTime": .integer(delayTime(now: now)), "executionTime": .integer(executionTime(now: now)),
        ]
        if status.isFinal {
            if let output { body["output"] = output }
        } else if let progress {
            body["output"] = progress
        }
        if let error { body["error"] = .string(error) }
        if let workerID, startedAt != nil { body["workerId"] = .string(workerID) }
        return .object(body)
    }

    /// What the platform POSTs to `webhook`: the envelope plus the input and the webhook itself.
    func webhookPayload(now: ContinuousClock.Instant, workerID: String?) -> JSONValue {
        guard case .object(var body) = envelope(now: now, workerID: workerID) else { return .null }
        body["input"] = input
        if let webhook { body["webhook"] = .string(webhook) }
        return .object(body)
    }

    static func milliseconds(_ duration: Duration) -> Int64 {
        let (seconds, attoseconds) = duration.components
        return max(0, seconds * 1000 + attoseconds / 1_000_000_000_000_000)
    }
}

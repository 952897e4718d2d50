/// The statuses of RunPod's endpoint API. A job moves `IN_QUEUE → IN_PROGRESS →` one of the four
/// final statuses; a poll loop that knows only COMPLETED and FAILED spins for ever on the others.
public enum JobStatus: String, Sendable, Equatable, CaseIterable {
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

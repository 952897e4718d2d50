import EndpointAPI
import Synchronization
import WorkerJSON

/// One job of the endpoint API, from submission to expiry. A reference, so the store changes it in
/// place (a job's chunk lists are never copied); every mutable field is read and written only
/// under the store's lock. That lock is what keeps accesses exclusive, so the fields opt out of the
/// runtime's own exclusivity bookkeeping (`@exclusivity(unchecked)`), which costs every access of
/// a class's field a call and a table entry: a /runsync makes dozens.
final class StoredJob: @unchecked Sendable {
    let id: String
    let request: JobRequest
    let executionTimeout: Duration
    let ttl: Duration
    let isSync: Bool
    /// False for a job whose only reader is the listener that submitted it (an MCP tool call):
    /// its result is not kept once final, so it takes no retention budget.
    @exclusivity(unchecked) var retained = true
    let createdAt: ContinuousClock.Instant
    /// The id with its hash, for the store's table.
    let tableKey: JobTable.Key
    /// The request's size: what the job holds while queued and retained. The body's length as
    /// received when there was one (measuring the parsed input again cost ~0.5 % of a /runsync),
    /// else the input's size as JSON.
    let inputBytes: Int
    /// The result's size as JSON (its stream's chunks for a stream the handler did not
    /// aggregate), once final.
    @exclusivity(unchecked) var resultBytes = 0
    /// The bytes of the chunks produced so far.
    @exclusivity(unchecked) var chunkBytes = 0
    /// What the job counts against the retained-results budget once final.
    var retainedBytes: Int { inputBytes + resultBytes }

    @exclusivity(unchecked) var status: JobStatus = .inQueue
    @exclusivity(unchecked) var startedAt: ContinuousClock.Instant?
    @exclusivity(unchecked) var finishedAt: ContinuousClock.Instant?
    @exclusivity(unchecked) var output: JSONValue?
    @exclusivity(unchecked) var error: String?
    /// The last progress update, shown as `output` while the job runs.
    @exclusivity(unchecked) var progress: JSONValue?
    /// Chunks not yet returned by `/stream`.
    @exclusivity(unchecked) var unpolledChunks: [JSONValue] = []
    /// Every chunk, for the final output of a stream the handler did not aggregate.
    @exclusivity(unchecked) var allChunks: [JSONValue] = []
    @exclusivity(unchecked) var task: Task<Void, Never>?
    /// Cancelled or timed out by the API: whatever the handler still produces is dropped. Set
    /// under the store's lock; atomic so the running job can read it without taking the lock.
    var stopped: Bool {
        get { stoppedFlag.load(ordering: .acquiring) }
        set { stoppedFlag.store(newValue, ordering: .releasing) }
    }
    private let stoppedFlag = Atomic<Bool>(false)
    /// `/runsync` and `/status-sync` callers waiting for the job to be final, by key.
    @exclusivity(unchecked) var waiters: [Int: JobStore.Waiter] = [:]
    /// `/stream`-style listeners (the OpenAI routes' SSE relay), by key.
    @exclusivity(unchecked) var listeners: [Int: AsyncStream<JobEvent>.Continuation] = [:]

    init(
        id: String, request: JobRequest, defaults: (executionTimeout: Duration, ttl: Duration), isSync: Bool,
        now: ContinuousClock.Instant, requestBytes: Int? = nil
    ) {
        self.id = id
        self.request = request
        self.executionTimeout = request.policy.executionTimeout ?? defaults.executionTimeout
        self.ttl = request.policy.ttl ?? defaults.ttl
        self.isSync = isSync
        self.createdAt = now
        self.tableKey = JobTable.Key(id)
        self.inputBytes = requestBytes ?? (try? request.input.serializedCount()) ?? 0
    }

    /// The same job queued again (`/retry`): same id and request, fresh state.
    func requeued(now: ContinuousClock.Instant) -> StoredJob {
        StoredJob(id: id, request: request, defaults: (executionTimeout, ttl), isSync: isSync, now: now, requestBytes: inputBytes)
    }

    /// What `/status` reports.
    func report(now: ContinuousClock.Instant, workerID: String?) -> JobStatusReport {
        JobStatusReport(
            id: id, status: status, delayTime: ((startedAt ?? finishedAt ?? now) - createdAt).wholeMilliseconds,
            executionTime: startedAt.map { ((finishedAt ?? now) - $0).wholeMilliseconds } ?? 0,
            output: status.isFinal ? output : progress, error: error,
            workerID: startedAt != nil ? workerID : nil)
    }

    var key: ObjectIdentifier { ObjectIdentifier(self) }
}

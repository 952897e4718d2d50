import EndpointAPI
import Synchronization
import WorkerJSON

/// One job of the endpoint API, from submission to expiry: its lifecycle (what `JobStateMachine`
/// rules on) and its data (output, chunks, observers, task). A reference, so the store changes it
/// in place (a job's chunk lists are never copied); every mutable field is read and written only
/// under the store's lock. That lock is what keeps accesses exclusive, so the fields opt out of the
/// runtime's own exclusivity bookkeeping (`@exclusivity(unchecked)`), which costs every access of
/// a class's field a call and a table entry: a /runsync makes dozens.
final class StoredJob: @unchecked Sendable {
    let id: String
    /// Its input goes once the job is final and cannot run again (`JobStore.releaseInput`).
    @exclusivity(unchecked) var request: JobRequest
    /// The id with its hash, for the store's table.
    let tableKey: JobTable.Key
    /// The lifecycle's copy for the runner, which reads it without the lock.
    let executionTimeout: Duration
    @exclusivity(unchecked) var lifecycle: JobLifecycle

    @exclusivity(unchecked) var output: JSONValue?
    @exclusivity(unchecked) var error: String?
    /// The last progress update, shown as `output` while the job runs.
    @exclusivity(unchecked) var progress: JSONValue?
    /// Chunks not yet returned by `/stream`.
    @exclusivity(unchecked) var unpolledChunks: [JSONValue] = []
    /// Every chunk, for the final output of a stream the handler did not aggregate.
    @exclusivity(unchecked) var allChunks: [JSONValue] = []
    @exclusivity(unchecked) var task: Task<Void, Never>?
    /// Cancelled, timed out or expired (`JobLifecycle.isStopped`): whatever the handler still
    /// produces is dropped. Set under the store's lock; atomic so the running job can read it
    /// without taking the lock.
    var stopped: Bool {
        get { stoppedFlag.load(ordering: .acquiring) }
        set { stoppedFlag.store(newValue, ordering: .releasing) }
    }
    private let stoppedFlag = Atomic<Bool>(false)
    /// `/runsync` and `/status-sync` callers waiting for the job to be final, by key.
    @exclusivity(unchecked) var waiters: [Int: JobStore.Waiter] = [:]
    /// `/stream`-style listeners (the OpenAI routes' SSE relay), by key.
    @exclusivity(unchecked) var listeners: [Int: AsyncStream<JobEvent>.Continuation] = [:]

    /// `tableKey`: a retried job's, whose id is the same (its digest is not computed again).
    init(id: String, request: JobRequest, lifecycle: JobLifecycle, tableKey: JobTable.Key? = nil) {
        self.id = id
        self.request = request
        self.tableKey = tableKey ?? JobTable.Key(id)
        self.executionTimeout = lifecycle.executionTimeout
        self.lifecycle = lifecycle
    }

    /// A submitted job: its request's policy, else the defaults. Its size is the body's length
    /// as received when there was one (measuring the parsed input again cost ~0.5 % of a
    /// /runsync), else the input's size as JSON.
    convenience init(
        id: String, request: JobRequest, defaults: (executionTimeout: Duration, ttl: Duration), isSync: Bool, retained: Bool,
        now: JobTime, requestBytes: Int? = nil
    ) {
        let lifecycle = JobLifecycle(
            createdAt: now, ttl: request.policy.ttl ?? defaults.ttl,
            executionTimeout: request.policy.executionTimeout ?? defaults.executionTimeout, isSync: isSync, retained: retained,
            inputBytes: requestBytes ?? (try? request.input.serializedCount()) ?? 0)
        self.init(id: id, request: request, lifecycle: lifecycle)
    }

    var status: JobStatus { lifecycle.status }

    /// What `/status` reports.
    func report(now: JobTime, workerID: String?) -> JobStatusReport {
        let status = lifecycle.status
        let (delay, execution, started) = lifecycle.timings(now: now)
        return JobStatusReport(
            id: id, status: status, delayTime: delay, executionTime: execution, output: status.isFinal ? output : progress,
            error: error, workerID: started ? workerID : nil)
    }

    var key: ObjectIdentifier { ObjectIdentifier(self) }
}

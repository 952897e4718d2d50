import Logging
import Synchronization

/// Runs and remembers the jobs of the local endpoint API: a queue served with the handler's
/// concurrency, the status lifecycle, cancellation, execution timeouts, TTL and retention.
final class LocalJobStore: Sendable {
    struct Settings: Sendable {
        /// How long a finished /run job stays queryable.
        var retention: Duration = .seconds(30 * 60)
        /// How long a finished /runsync job stays queryable (the cloud keeps these 1 minute).
        var syncRetention: Duration = .seconds(60)
        var defaultExecutionTimeout: Duration = .seconds(600)
        var defaultTTL: Duration = .seconds(24 * 3600)
        /// Finished /run jobs beyond this are forgotten oldest first, so a flood cannot exhaust memory.
        var maxRetainedJobs = 100_000
        /// The same for /runsync jobs, whose callers already have their result: a small bound keeps
        /// a flood of /runsync from holding memory (and latency) hostage.
        var maxRetainedSyncJobs = 10_000
        var webhookRetryDelays: [Duration] = [.seconds(10), .seconds(10)]
        var webhookTimeout: Duration = .seconds(10)
    }

    enum Event: Sendable {
        case chunk(JSONValue)
        case finished(LocalJob)
    }

    struct Counters: Sendable {
        var completed = 0
        var failed = 0
        var retried = 0
    }

    struct State {
        var jobs: [String: LocalJob] = [:]
        var queue = FIFO<String>()
        var queued = 0
        var running = 0
        var concurrency: Int
        var counters = Counters()
        /// Finished jobs in finishing order, one list per retention, for O(1) expiry.
        var expiries = FIFO<Expiry>()
        var syncExpiries = FIFO<Expiry>()
        var listeners: [String: [Int: AsyncStream<Event>.Continuation]] = [:]
        var nextListener = 0
        /// Queued and running jobs: the only ones with a TTL or execution timeout to watch.
        var active: Set<String> = []
        /// /runsync and /status-sync callers waiting for a job to finish, with their deadlines.
        var waiters: [String: [Int: Waiter]] = [:]
    }

    struct Expiry {
        let deadline: ContinuousClock.Instant
        let id: String
        /// When the job finished: a retried job that finished again has a newer entry.
        let finished: ContinuousClock.Instant
    }

    struct Waiter {
        let deadline: ContinuousClock.Instant
        let continuation: CheckedContinuation<Void, Never>
    }

    let state: Mutex<State>
    let settings: Settings
    let handler: any RawJobHandler
    let options: WorkerOptions
    let configuration: WorkerConfiguration
    let logger: Logger
    let metrics: WorkerMetrics

    init(
        handler: any RawJobHandler, options: WorkerOptions, configuration: WorkerConfiguration,
        settings: Settings, metrics: WorkerMetrics, logger: Logger
    ) {
        self.handler = handler
        self.options = options
        self.configuration = configuration
        self.settings = settings
        self.metrics = metrics
        self.logger = logger
        state = Mutex(State(concurrency: max(1, configuration.concurrency)))
    }

    var workerID: String? { configuration.podIDIsSet ? configuration.workerID : nil }

    // MARK: Queries

    func envelope(_ id: String) -> JSONValue? {
        let now = ContinuousClock.now
        return state.withLock { $0.jobs[id]?.envelope(now: now, workerID: workerID) }
    }

    /// The chunks produced since the last poll, and the status.
    func poll(_ id: String) -> JSONValue? {
        return state.withLock { state -> JSONValue? in
            guard var job = state.jobs[id] else { return nil }
            let chunks = job.unpolledChunks
            job.unpolledChunks.removeAll()
            state.jobs[id] = job
            var body: [String: JSONValue] = [
                "id": .string(id), "status": .string(job.status.rawValue),
                "stream": .array(chunks.map { ["output": $0] }),
            ]
            if let error = job.error { body["error"] = .string(error) }
            return .object(body)
        }
    }

    func counts() -> (queued: Int, running: Int, counters: Counters) {
        state.withLock { ($0.queued, $0.running, $0.counters) }
    }

    func job(_ id: String) -> LocalJob? { state.withLock { $0.jobs[id] } }

    // MARK: Listening

    /// Events of one job: chunks as they are produced, then `.finished` (at once if it already is).
    func listen(_ id: String) -> AsyncStream<Event>? {
        let (stream, continuation) = AsyncStream<Event>.makeStream()
        let known = state.withLock { state -> Bool in
            guard let job = state.jobs[id] else { return false }
            if job.status.isFinal {
                continuation.yield(.finished(job))
                continuation.finish()
                return true
            }
            let key = state.nextListener
            state.nextListener += 1
            state.listeners[id, default: [:]][key] = continuation
            continuation.onTermination = { [weak self] _ in
                self?.state.withLock { state in
                    state.listeners[id]?[key] = nil
                    if state.listeners[id]?.isEmpty == true { state.listeners[id] = nil }
                }
            }
            return true
        }
        return known ? stream : nil
    }

    /// Waits until the job is final or `timeout` passes (the janitor enforces the deadline);
    /// returns its state then, nil if unknown.
    func waitForFinal(_ id: String, timeout: Duration) async -> LocalJob? {
        let deadline = ContinuousClock.now + timeout
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let resumeNow = state.withLock { state -> Bool in
                guard let job = state.jobs[id], !job.status.isFinal else { return true }
                let key = state.nextListener
                state.nextListener += 1
                state.waiters[id, default: [:]][key] = Waiter(deadline: deadline, continuation: continuation)
                return false
            }
            if resumeNow { continuation.resume() }
        }
        return job(id)
    }

    func notify(_ listeners: [Int: AsyncStream<Event>.Continuation]?, _ event: Event, finish: Bool) {
        guard let listeners else { return }
        for continuation in listeners.values {
            continuation.yield(event)
            if finish { continuation.finish() }
        }
    }

    // MARK: Deadlines

    /// Enforces every deadline, once per `interval`, until cancelled: execution timeouts, TTLs,
    /// result retention, and the waits of /runsync. One task for all jobs, instead of timers per job.
    func runJanitor(interval: Duration = .milliseconds(20)) async {
        while !Task.isCancelled {
            try? await Task.sleep(for: interval)
            sweep(now: .now)
        }
    }

    func sweep(now: ContinuousClock.Instant) {
        var cancelled: [Task<Void, Never>] = []
        var timedOut: [(String, Duration)] = []
        var resume: [CheckedContinuation<Void, Never>] = []
        var finished: [AsyncStream<Event>.Continuation] = []
        state.withLock { state in
            Self.expire(&state.expiries, in: &state.jobs, now: now, cap: settings.maxRetainedJobs)
            Self.expire(&state.syncExpiries, in: &state.jobs, now: now, cap: settings.maxRetainedSyncJobs)
            for id in state.active {
                guard let job = state.jobs[id] else {
                    state.active.remove(id)
                    continue
                }
                if now >= job.createdAt + job.ttl {
                    if let task = job.task { cancelled.append(task) }
                    if job.status == .inQueue { state.queued -= 1 }
                    state.jobs[id] = nil
                    state.active.remove(id)
                    finished += state.listeners.removeValue(forKey: id).map { Array($0.values) } ?? []
                    resume += state.waiters.removeValue(forKey: id).map { $0.values.map(\.continuation) } ?? []
                } else if let started = job.startedAt, now >= started + job.executionTimeout {
                    timedOut.append((id, job.executionTimeout))
                }
            }
            for (id, waiting) in state.waiters {
                let expired = waiting.filter { $0.value.deadline <= now }
                guard !expired.isEmpty else { continue }
                for key in expired.keys { state.waiters[id]?[key] = nil }
                if state.waiters[id]?.isEmpty == true { state.waiters[id] = nil }
                resume += expired.values.map(\.continuation)
            }
        }
        for task in cancelled { task.cancel() }
        for continuation in finished { continuation.finish() }
        for continuation in resume { continuation.resume() }
        for (id, limit) in timedOut {
            stop(id, as: .timedOut, error: "the job ran longer than its execution timeout of \(LocalJob.milliseconds(limit)) ms")
        }
        let (queued, running, _) = counts()
        metrics.update(queued: queued, running: running)
    }
}

extension LocalJobStore {
    /// Forgets finished jobs whose retention has passed, oldest first (and beyond the cap).
    /// Plain `inout` access: the lists hold up to `maxRetainedJobs` entries and must never be copied.
    fileprivate static func expire(
        _ list: inout FIFO<Expiry>, in jobs: inout [String: LocalJob],
        now: ContinuousClock.Instant, cap: Int
    ) {
        while let first = list.first, first.deadline <= now || list.count > cap {
            list.removeFirst()
            // A retried job has a newer entry of its own (or none yet, while it runs again).
            if let job = jobs[first.id], job.status.isFinal, job.finishedAt == first.finished { jobs[first.id] = nil }
        }
    }
}

/// A first-in, first-out queue with O(1) removal from the front.
struct FIFO<Element> {
    private var storage: [Element] = []
    private var head = 0

    var isEmpty: Bool { head >= storage.count }
    var count: Int { storage.count - head }
    var first: Element? { isEmpty ? nil : storage[head] }

    mutating func append(_ element: Element) { storage.append(element) }

    @discardableResult
    mutating func removeFirst() -> Element {
        let element = storage[head]
        head += 1
        if head > 1024 && head * 2 > storage.count {
            storage.removeFirst(head)
            head = 0
        }
        return element
    }

    mutating func removeAll() {
        storage.removeAll()
        head = 0
    }
}

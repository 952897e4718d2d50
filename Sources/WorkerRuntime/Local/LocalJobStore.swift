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
        /// Finished jobs beyond this are forgotten oldest first, so a flood cannot exhaust memory.
        var maxRetainedJobs = 100_000
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
        var expiries = FIFO<(deadline: ContinuousClock.Instant, id: String)>()
        var syncExpiries = FIFO<(deadline: ContinuousClock.Instant, id: String)>()
        var retained = 0
        var listeners: [String: [Int: AsyncStream<Event>.Continuation]] = [:]
        var nextListener = 0
        var lastSweep = ContinuousClock.now
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
        sweepIfDue()
        let now = ContinuousClock.now
        return state.withLock { $0.jobs[id]?.envelope(now: now, workerID: workerID) }
    }

    /// The chunks produced since the last poll, and the status.
    func poll(_ id: String) -> JSONValue? {
        sweepIfDue()
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

    /// Waits until the job is final or `timeout` passes; returns its state then (nil if unknown).
    func waitForFinal(_ id: String, timeout: Duration) async -> LocalJob? {
        guard let events = listen(id) else { return nil }
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                for await event in events {
                    if case .finished = event { return }
                }
            }
            group.addTask { try? await Task.sleep(for: timeout) }
            await group.next()
            group.cancelAll()
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

    // MARK: Expiry

    /// Forgets expired jobs: unfinished past their TTL (cancelled first), finished past retention.
    func sweepIfDue() {
        let now = ContinuousClock.now
        let due = state.withLock { state -> Bool in
            guard now - state.lastSweep >= .milliseconds(500) else { return false }
            state.lastSweep = now
            return true
        }
        if due { sweep(now: now) }
    }

    func sweep(now: ContinuousClock.Instant) {
        var cancelled: [Task<Void, Never>] = []
        state.withLock { state in
            for list in [\State.expiries, \State.syncExpiries] {
                while let first = state[keyPath: list].first, first.deadline <= now || state.retained > settings.maxRetainedJobs {
                    state[keyPath: list].removeFirst()
                    if state.jobs[first.id]?.status.isFinal == true {
                        state.jobs[first.id] = nil
                        state.retained -= 1
                    }
                }
            }
            for (id, job) in state.jobs where !job.status.isFinal && now >= job.createdAt + job.ttl {
                if let task = job.task { cancelled.append(task) }
                if job.status == .inQueue { state.queued -= 1 }
                state.jobs[id] = nil
                if let listeners = state.listeners.removeValue(forKey: id) {
                    for continuation in listeners.values { continuation.finish() }
                }
            }
        }
        for task in cancelled { task.cancel() }
        let (queued, running, _) = counts()
        metrics.update(queued: queued, running: running)
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

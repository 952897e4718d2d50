import EndpointAPI
import Logging
import RedisClient
import Synchronization

/// A gateway's ears: one subscription to the endpoint's events channel, and the calls waiting in
/// this process for a job to change (`/runsync`, `/status-sync`, MCP calls, SSE relays). A
/// message only wakes a waiter, which then reads the job from Redis: the message is a hint, the
/// record the truth. Pub/sub forgets what is published while the connection is down, so on
/// `.reconnected` (and `.overflowed`) every waiter wakes and reads again, and a waiter never
/// sleeps longer than `recheck` without reading (a lost message costs at most that).
final class FleetEvents: Sendable {
    /// What woke a waiter.
    enum Wake: Sendable {
        /// The job's record changed: `d` final, `c` a chunk, `p` progress.
        case changed(Character)
        /// The job is final, and the message carried its report.
        case final(JobStatusReport)
        /// Messages may have been missed (or the wait's bound passed): read the record again.
        case recheck
    }

    /// One waiter's wakes: kept until taken (a change that comes between two waits is not lost;
    /// a final report replaces what was kept), or a wait with a time bound.
    final class Ticket: Sendable {
        let id: String
        private struct State {
            var kept: [Wake] = []
            var waiter: CheckedContinuation<Wake, Never>?
            /// The wait's time bound: cancelled when a wake comes first.
            var timer: Task<Void, Never>?
            /// Counts waits, so a time bound set for one wait never ends a later one.
            var wait = 0
        }
        private let state = Mutex(State())

        fileprivate init(id: String) {
            self.id = id
        }

        fileprivate func deliver(_ wake: Wake) {
            let waiter = state.withLock { state -> CheckedContinuation<Wake, Never>? in
                if let waiter = state.waiter {
                    state.waiter = nil
                    state.wait += 1
                    state.timer?.cancel()
                    state.timer = nil
                    return waiter
                }
                if case .final = wake {
                    state.kept = [wake]
                } else if state.kept.count < 16 {
                    state.kept.append(wake)
                }
                return nil
            }
            waiter?.resume(returning: wake)
        }

        /// The next wake, or `.recheck` once `limit` passed (or the task was cancelled).
        fileprivate func next(limit: Duration) async -> Wake {
            if let kept = state.withLock({ $0.kept.isEmpty ? nil : $0.kept.removeFirst() }) { return kept }
            return await withTaskCancellationHandler {
                await withCheckedContinuation { (continuation: CheckedContinuation<Wake, Never>) in
                    let outcome = state.withLock { state -> (wait: Int?, kept: Wake?) in
                        if !state.kept.isEmpty { return (nil, state.kept.removeFirst()) }
                        state.waiter = continuation
                        return (state.wait, nil)
                    }
                    if let kept = outcome.kept {
                        continuation.resume(returning: kept)
                    } else if let wait = outcome.wait {
                        let timer = Task {
                            guard (try? await Task.sleep(for: limit)) != nil else { return }
                            self.expire(wait)
                        }
                        state.withLock { state in
                            if state.wait == wait { state.timer = timer } else { timer.cancel() }
                        }
                    }
                }
            } onCancel: {
                expire(nil)
            }
        }

        /// Ends the wait under way (`wait`: only if it is still that one) with `.recheck`.
        fileprivate func expire(_ wait: Int?) {
            let waiter = state.withLock { state -> CheckedContinuation<Wake, Never>? in
                guard let waiter = state.waiter, wait == nil || state.wait == wait else { return nil }
                state.waiter = nil
                state.wait += 1
                if wait == nil { state.timer?.cancel() }
                state.timer = nil
                return waiter
            }
            waiter?.resume(returning: .recheck)
        }
    }

    private struct State {
        var tickets: [String: [ObjectIdentifier: Ticket]] = [:]
        var pending: [String: (ticket: Ticket, since: ContinuousClock.Instant)] = [:]
        var subscriber: RedisSubscriber?
    }

    private let state = Mutex(State())
    /// Jobs seen completing lately, for status reads without a round trip.
    private let recent = RecentCompletions()
    let redis: FleetRedis
    let logger: Logger
    /// The longest a waiter goes without reading its job's record.
    let recheck: Duration

    init(redis: FleetRedis, logger: Logger, recheck: Duration = .seconds(1)) {
        self.redis = redis
        self.logger = logger
        self.recheck = recheck
    }

    /// Wakes for one job until `cancel(_:)`. Register before reading the record, so a change
    /// between the read and the wait is not missed.
    func register(_ id: String) -> Ticket {
        let ticket = Ticket(id: id)
        state.withLock { $0.tickets[id, default: [:]][ObjectIdentifier(ticket)] = ticket }
        return ticket
    }

    func cancel(_ ticket: Ticket) {
        state.withLock { state in
            state.tickets[ticket.id]?[ObjectIdentifier(ticket)] = nil
            if state.tickets[ticket.id]?.isEmpty == true { state.tickets[ticket.id] = nil }
        }
        ticket.expire(nil)
    }

    /// The next wake of `ticket`, or `.recheck` after `recheck` (or `limit`, if sooner).
    func next(_ ticket: Ticket, limit: Duration? = nil) async -> Wake {
        await ticket.next(limit: min(limit ?? recheck, recheck))
    }

    /// Listens until cancelled: subscribes (again after a loss), dispatches each message.
    func run() async {
        while !Task.isCancelled {
            let subscriber: RedisSubscriber
            do {
                subscriber = try await redis.connector().subscriber(channels: [redis.keys.events], bufferLimit: 65_536)
            } catch {
                logger.warning("Fleet: cannot subscribe to \(redis.keys.events) on \(redis.server) yet (\(error)); retrying in 1 s")
                try? await Task.sleep(for: .seconds(1))
                continue
            }
            state.withLock { $0.subscriber = subscriber }
            await withTaskCancellationHandler {
                for await event in subscriber.events {
                    switch event {
                    case .message(let message): dispatch(message.payload)
                    case .reconnected, .overflowed: wakeAll()
                    case .subscribed: wakeAll()
                    case .disconnected(let error): logger.warning("Fleet: lost the events subscription (\(error)); waiters poll meanwhile")
                    }
                }
            } onCancel: {
                subscriber.close()
            }
            state.withLock { $0.subscriber = nil }
            subscriber.close()
            if !Task.isCancelled { try? await Task.sleep(for: .milliseconds(200)) }
        }
    }

    /// `<kind> <job id>`, or `f <job id>\n<report's fields>` (see `FleetScripts.finish`).
    private func dispatch(_ payload: [UInt8]) {
        guard payload.count > 2, payload[1] == UInt8(ascii: " ") else { return }
        let kind = Character(Unicode.Scalar(payload[0]))
        let body = payload[2...]
        let end = kind == "f" ? body.firstIndex(of: UInt8(ascii: "\n")) ?? body.endIndex : body.endIndex
        let id = String(decoding: body[body.startIndex..<end], as: UTF8.self)
        if kind == "f", end < body.endIndex { recent.put(id, .message(body[(end + 1)...])) }
        let tickets = state.withLock { $0.tickets[id].map { Array($0.values) } ?? [] }
        guard !tickets.isEmpty else { return }
        var wake = Wake.changed(kind == "f" ? "d" : kind)
        if kind == "f", end < body.endIndex,
            let report = FleetStore.report(fromMessage: body[(end + 1)...], id: id, key: redis.keys.job(id))
        {
            wake = .final(report)
        }
        for ticket in tickets { ticket.deliver(wake) }
    }

    /// A final report this process recorded itself (a job it ran): its waiters need not wait for
    /// the message.
    func deliverLocal(_ id: String, _ report: JobStatusReport) {
        if report.status == .completed { recent.put(id, .report(report)) }
        let tickets = state.withLock { $0.tickets[id].map { Array($0.values) } ?? [] }
        for ticket in tickets { ticket.deliver(.final(report)) }
    }

    /// The report of `id` if it completed in the last seconds (`RecentCompletions`).
    func recentlyCompleted(_ id: String) -> JobStatusReport? {
        recent.completed(id) { FleetStore.report(fromMessage: $0, id: id, key: redis.keys.job(id)) }
    }

    /// Tickets registered before their job was submitted (a `/runsync`'s), for the wait that
    /// follows: a finish message that comes before the wait begins is kept in the ticket.
    func registerPending(_ id: String) {
        let ticket = register(id)
        let now = ContinuousClock.now
        let stale = state.withLock { state -> [Ticket] in
            state.pending[id] = (ticket, now)
            guard state.pending.count > 1024 else { return [] }
            // A wait that never came (a caller gone between submit and wait): dropped after a minute.
            let old = state.pending.filter { now - $0.value.since > .seconds(60) }
            for key in old.keys { state.pending[key] = nil }
            return old.values.map(\.ticket)
        }
        for ticket in stale { cancel(ticket) }
    }

    /// The ticket `registerPending` made for `id`, now the caller's.
    func takePending(_ id: String) -> Ticket? {
        state.withLock { $0.pending.removeValue(forKey: id)?.ticket }
    }

    func dropPending(_ id: String) {
        if let ticket = takePending(id) { cancel(ticket) }
    }

    private func wakeAll() {
        let tickets = state.withLock { $0.tickets.values.flatMap(\.values) }
        for ticket in tickets { ticket.deliver(.recheck) }
    }
}

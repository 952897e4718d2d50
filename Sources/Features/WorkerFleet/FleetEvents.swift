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
        /// Messages may have been missed (or the wait's bound passed): read the record again.
        case recheck
    }

    final class Ticket: Sendable {
        let id: String
        fileprivate let continuation: AsyncStream<Wake>.Continuation
        let wakes: AsyncStream<Wake>

        fileprivate init(id: String) {
            self.id = id
            (wakes, continuation) = AsyncStream<Wake>.makeStream(bufferingPolicy: .bufferingNewest(16))
        }
    }

    private struct State {
        var tickets: [String: [ObjectIdentifier: Ticket]] = [:]
        var subscriber: RedisSubscriber?
    }

    private let state = Mutex(State())
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
        ticket.continuation.finish()
    }

    /// The next wake of `ticket`, or `.recheck` after `recheck` (or `limit`, if sooner).
    func next(_ ticket: Ticket, limit: Duration? = nil) async -> Wake {
        let bound = min(limit ?? recheck, recheck)
        return await withTaskGroup(of: Wake?.self) { group in
            group.addTask {
                var iterator = ticket.wakes.makeAsyncIterator()
                return await iterator.next()
            }
            group.addTask {
                try? await Task.sleep(for: bound)
                return Task.isCancelled ? nil : .recheck
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            return first ?? .recheck
        }
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

    /// `<kind> <job id>`.
    private func dispatch(_ payload: [UInt8]) {
        guard payload.count > 2, payload[1] == UInt8(ascii: " ") else { return }
        let kind = Character(Unicode.Scalar(payload[0]))
        let id = String(decoding: payload[2...], as: UTF8.self)
        let tickets = state.withLock { $0.tickets[id].map { Array($0.values) } ?? [] }
        for ticket in tickets { ticket.continuation.yield(.changed(kind)) }
    }

    private func wakeAll() {
        let tickets = state.withLock { $0.tickets.values.flatMap(\.values) }
        for ticket in tickets { ticket.continuation.yield(.recheck) }
    }
}

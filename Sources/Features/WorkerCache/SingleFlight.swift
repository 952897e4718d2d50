import Synchronization
import WorkerJSON

/// Concurrent misses for one key make one upstream call: the first caller leads (runs the job),
/// the rest wait for its answer. A leader that fails, streams or is cancelled hands its followers
/// nil, and each then runs the job itself (errors are never shared: each job reports its own).
package final class SingleFlight: Sendable {
    package enum Role {
        case leader
        /// The leader's answer, or nil when there is none to share.
        case follower(JSONValue?)
    }

    private struct Flight {
        var waiters: [Int: CheckedContinuation<JSONValue?, Never>] = [:]
        /// Followers cancelled before their continuation was stored.
        var cancelled: Set<Int> = []
    }

    private let flights = Mutex<[String: Flight]>([:])
    private let nextID = Atomic<Int>(0)

    package init() {}

    /// Leads the flight for `key` or waits on the one in the air. A leader must call `finish`.
    package func join(_ key: String) async -> Role {
        let id = nextID.add(1, ordering: .relaxed).oldValue
        let leads = flights.withLock { flights -> Bool in
            if flights[key] == nil {
                flights[key] = Flight()
                return true
            }
            return false
        }
        if leads { return .leader }
        let answer = await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<JSONValue?, Never>) in
                let stored = flights.withLock { flights -> Bool in
                    guard flights[key] != nil, flights[key]!.cancelled.remove(id) == nil else { return false }
                    flights[key]!.waiters[id] = continuation
                    return true
                }
                // The flight landed (or this waiter was cancelled) before it could wait.
                if !stored { continuation.resume(returning: nil) }
            }
        } onCancel: {
            let continuation = flights.withLock { flights -> CheckedContinuation<JSONValue?, Never>? in
                guard flights[key] != nil else { return nil }
                if let continuation = flights[key]!.waiters.removeValue(forKey: id) { return continuation }
                flights[key]!.cancelled.insert(id)
                return nil
            }
            continuation?.resume(returning: nil)
        }
        return .follower(answer)
    }

    /// Ends the leader's flight, handing `answer` (nil: none to share) to everyone waiting.
    package func finish(_ key: String, answer: JSONValue?) {
        let waiters = flights.withLock { $0.removeValue(forKey: key)?.waiters.values.map { $0 } ?? [] }
        for waiter in waiters { waiter.resume(returning: answer) }
    }

    /// Flights in the air (for tests).
    package var inFlight: Int { flights.withLock { $0.count } }
}

import EndpointAPI
import Synchronization

/// Jobs this process saw complete in the last seconds (its own, and the fleet's finish messages),
/// so a `/status` or `/status-sync` right after a job ends is answered without a round trip to
/// Redis. Only COMPLETED ones: a completed job never changes again (only FAILED and TIMED_OUT
/// jobs can be retried) until its retention ends, which an entry outlives by at most `life`.
/// Bounded: `capacity` entries of at most `maxMessage` bytes, the oldest replaced first.
final class RecentCompletions: Sendable {
    enum Entry: Sendable {
        case report(JobStatusReport)
        /// A finish message's report fields, read only if asked for.
        case message(ArraySlice<UInt8>)
    }

    private struct State {
        var entries: [String: (entry: Entry, at: ContinuousClock.Instant)] = [:]
        var ring: [String] = []
        var next = 0
    }

    private let state = Mutex(State())
    static let capacity = 2048
    static let life: Duration = .seconds(5)
    static let maxMessage = 2048

    func put(_ id: String, _ entry: Entry) {
        if case .message(let bytes) = entry, bytes.count > Self.maxMessage { return }
        let now = ContinuousClock.now
        state.withLock { state in
            if state.entries.updateValue((entry, now), forKey: id) != nil { return }
            if state.ring.count < Self.capacity {
                state.ring.append(id)
                return
            }
            let evicted = state.ring[state.next]
            state.entries[evicted] = nil
            state.ring[state.next] = id
            state.next = (state.next + 1) % Self.capacity
        }
    }

    /// The report of `id` if it completed lately; `parse` reads a kept message.
    func completed(_ id: String, parse: (ArraySlice<UInt8>) -> JobStatusReport?) -> JobStatusReport? {
        let now = ContinuousClock.now
        guard let (entry, at) = state.withLock({ $0.entries[id] }), now - at < Self.life else { return nil }
        let report: JobStatusReport?
        switch entry {
        case .report(let kept): report = kept
        case .message(let bytes): report = parse(bytes)
        }
        return report?.status == .completed ? report : nil
    }
}

/// When the slot map is read again (`CLUSTER SLOTS`), as a pure value the cluster client keeps
/// under its lock: at most one read at a time (callers that want one while it runs share it),
/// and none sooner than `minimumInterval` after the last one ended, so a storm of `MOVED`
/// replies during a resharding costs the cluster one read per interval, not one per call.
/// `Refresh` is what callers await (a task in the client; anything in tests).
package struct ClusterRefreshState<Refresh> {
    package enum Decision {
        /// A read is under way: await it.
        case join(Refresh)
        /// A read was started (`start` made it): await it.
        case started(Refresh)
        /// The last read ended too recently: use the map there is.
        case skip
    }

    package let minimumInterval: Duration
    package private(set) var running: Refresh?
    package private(set) var lastEnded: ContinuousClock.Instant?

    package init(minimumInterval: Duration = .milliseconds(100)) {
        self.minimumInterval = minimumInterval
    }

    /// A caller wants a fresh map. `required` (there is no map yet, or the caller asks for one by
    /// name) starts a read whenever none runs, however recent the last.
    package mutating func request(
        at now: ContinuousClock.Instant, required: Bool, start: () -> Refresh
    ) -> Decision {
        if let running { return .join(running) }
        if !required, let lastEnded, now - lastEnded < minimumInterval { return .skip }
        let refresh = start()
        running = refresh
        return .started(refresh)
    }

    /// The read ended (with a map or not).
    package mutating func ended(at now: ContinuousClock.Instant) {
        running = nil
        lastEnded = now
    }
}

extension ClusterRefreshState: Sendable where Refresh: Sendable {}
extension ClusterRefreshState.Decision: Sendable where Refresh: Sendable {}

/// When to fetch the issuer's keys again, as a pure decision (tested without a clock or a
/// server). Fetches happen for three reasons only: no keys yet, keys past their age, or a token
/// naming a key not in them, and never more often than `refetchInterval` for the last two, so a
/// flood of tokens with made-up `kid`s costs the issuer one request per interval.
package struct KeyRefreshPolicy: Sendable {
    package var refetchInterval: Duration
    package var maxAge: Duration
    /// After a failed fetch with no keys to fall back on, requests are refused this long before
    /// the next try (each would otherwise wait out the issuer's timeout).
    package var retryAfterFailure: Duration = .seconds(2)

    package init(refetchInterval: Duration, maxAge: Duration) {
        self.refetchInterval = refetchInterval
        self.maxAge = maxAge
    }

    package enum Decision: Sendable, Equatable {
        /// Verify with the keys held.
        case use
        /// Verify with the keys held, and refresh them meanwhile (they are past their age).
        case useAndRefresh
        /// Fetch first (one fetch for all waiting requests), then look again.
        case fetch
        /// The token names a key the issuer did not publish at the last fetch, which was recent.
        case unknownKey
        /// No keys, and the last fetch failed a moment ago.
        case unavailable
    }

    package struct State: Sendable, Equatable {
        package var hasKeys = false
        package var fetchedAt: ContinuousClock.Instant?
        package var lastAttempt: ContinuousClock.Instant?
        package var lastAttemptFailed = false

        package init() {}
    }

    package func decide(_ state: State, keyKnown: Bool, now: ContinuousClock.Instant) -> Decision {
        let sinceAttempt = state.lastAttempt.map { now - $0 }
        guard state.hasKeys else {
            if state.lastAttemptFailed, let sinceAttempt, sinceAttempt < retryAfterFailure { return .unavailable }
            return .fetch
        }
        let mayRefetch = sinceAttempt.map { $0 >= refetchInterval } ?? true
        if keyKnown {
            let stale = state.fetchedAt.map { now - $0 >= maxAge } ?? true
            return stale && mayRefetch ? .useAndRefresh : .use
        }
        return mayRefetch ? .fetch : .unknownKey
    }
}

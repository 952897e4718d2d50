/// How many extra calls fallbacks may make, as a share of first calls (Finagle's and Envoy's
/// retry budget): each first call adds `ratio` of a token, each fallback spends one. A failing
/// tier can then add at most that share of load, instead of doubling it; `reserve` tokens to
/// start with (and the floor `perSecond` adds back) keep fallbacks possible when traffic is thin.
package struct RetryBudget: Sendable, Equatable {
    package let ratio: Double
    package let reserve: Double
    package let perSecond: Double
    private var balance: Double
    private var refilled: ContinuousClock.Instant?

    package init(ratio: Double, reserve: Double = 10, perSecond: Double = 1) {
        self.ratio = ratio
        self.reserve = reserve
        self.perSecond = perSecond
        self.balance = reserve
    }

    /// A first call was made.
    package mutating func deposit() {
        balance = min(cap, balance + ratio)
    }

    /// Takes one token for a fallback, if there is one.
    package mutating func withdraw(now: ContinuousClock.Instant) -> Bool {
        if let refilled {
            let seconds = Double((now - refilled).components.seconds) + Double((now - refilled).components.attoseconds) / 1e18
            balance = min(cap, balance + seconds * perSecond)
        }
        refilled = now
        // A hair under one is one: ten deposits of 0.1 add up to 0.9999999999999999.
        guard balance >= 1 - 1e-9 else { return false }
        balance = max(0, balance - 1)
        return true
    }

    private var cap: Double { max(reserve, 100) }
}

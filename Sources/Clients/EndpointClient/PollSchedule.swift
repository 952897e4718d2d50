/// How `EndpointClient.result(of:)` spaces its `/status` polls: starting at `initial`, growing by
/// `factor` up to `cap`, each delay jittered by ±`jitter` so that many waiting clients do not
/// poll in step. Pure: the delay for an attempt is computed, not slept.
public struct PollSchedule: Sendable, Equatable {
    public var initial: Duration
    public var factor: Double
    public var cap: Duration
    /// A fraction of the delay, 0 to 1.
    public var jitter: Double

    public init(initial: Duration = .milliseconds(200), factor: Double = 1.5, cap: Duration = .seconds(5), jitter: Double = 0.2) {
        self.initial = initial
        self.factor = max(1, factor)
        self.cap = cap
        self.jitter = min(max(jitter, 0), 1)
    }

    /// The pause before poll number `attempt` (0 is the first), given a random draw in 0...1.
    public func delay(attempt: Int, random: Double = Double.random(in: 0...1)) -> Duration {
        var base = Double(initial.components.seconds) + Double(initial.components.attoseconds) / 1e18
        let capSeconds = Double(cap.components.seconds) + Double(cap.components.attoseconds) / 1e18
        for _ in 0..<min(attempt, 64) {
            base *= factor
            if base >= capSeconds { break }
        }
        base = min(base, capSeconds)
        let jittered = base * (1 - jitter + 2 * jitter * random)
        return .milliseconds(Int64(max(0, jittered) * 1000))
    }
}

/// A moment as the job lifecycle's rules count time: the continuous clock's reading, as the
/// `Duration` since its epoch. Not `ContinuousClock.Instant` itself: that type's layout is hidden
/// outside the standard library (it is not frozen), so every copy of one, and every struct or enum
/// holding one, goes through the runtime's value witnesses; `Duration`'s layout is known, so a
/// `JobLifecycle` is a plain value, copied and switched inline. A store shared between workers
/// would count from an epoch of its own (wall-clock time); the rules only compare and subtract.
struct JobTime: Comparable, Hashable, Sendable {
    var sinceEpoch: Duration

    init(sinceEpoch: Duration) {
        self.sinceEpoch = sinceEpoch
    }

    /// The reading of the store's clock, converted once where it is read.
    init(_ instant: ContinuousClock.Instant) {
        sinceEpoch = Self.epoch.duration(to: instant)
    }

    private static let epoch = ContinuousClock().systemEpoch

    static func < (a: JobTime, b: JobTime) -> Bool { a.sinceEpoch < b.sinceEpoch }
    static func + (time: JobTime, duration: Duration) -> JobTime { JobTime(sinceEpoch: time.sinceEpoch + duration) }
    static func - (a: JobTime, b: JobTime) -> Duration { a.sinceEpoch - b.sinceEpoch }
}

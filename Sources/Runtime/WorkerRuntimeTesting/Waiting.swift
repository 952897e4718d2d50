/// A wait in a test that ran out: names what was awaited.
public struct TimeoutError: Error, CustomStringConvertible, Sendable {
    public let what: String
    public let timeout: Duration

    public init(what: String, timeout: Duration) {
        self.what = what
        self.timeout = timeout
    }

    public var description: String { "timed out after \(timeout) waiting for \(what)" }
}

/// Runs `operation`, failing with `TimeoutError` instead of hanging when it takes longer than
/// `timeout` (the operation is cancelled then).
public func withTimeout<T: Sendable>(
    _ timeout: Duration = .seconds(20), _ what: String = "the operation",
    _ operation: @escaping @Sendable () async throws -> T
) async throws -> T {
    try await withThrowingTaskGroup(of: T.self) { group in
        group.addTask { try await operation() }
        group.addTask {
            try await Task.sleep(for: timeout)
            throw TimeoutError(what: what, timeout: timeout)
        }
        defer { group.cancelAll() }
        return try await group.next()!
    }
}

/// Polls `condition` every few milliseconds until it holds, failing with `TimeoutError` after
/// `timeout`. For state that changes in the background (a job finishing, a file appearing).
public func waitUntil(
    _ what: String = "a condition", timeout: Duration = .seconds(10), every interval: Duration = .milliseconds(5),
    _ condition: @Sendable () async throws -> Bool
) async throws {
    let deadline = ContinuousClock.now + timeout
    while true {
        if try await condition() { return }
        guard ContinuousClock.now < deadline else { throw TimeoutError(what: what, timeout: timeout) }
        try await Task.sleep(for: interval)
    }
}

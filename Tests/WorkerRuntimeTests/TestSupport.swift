import Logging
import Synchronization
import WorkerRuntime
import WorkerRuntimeTesting

/// Short waits so protocol timings are exercised in milliseconds.
func fastTimings() -> WorkerTimings {
    var timings = WorkerTimings()
    timings.resultRetryDelays = [.milliseconds(20), .milliseconds(30)]
    timings.tooManyRequestsDelay = .milliseconds(300)
    timings.stopPollDelay = .milliseconds(50)
    timings.backoffBase = .milliseconds(20)
    timings.backoffCap = .milliseconds(200)
    timings.concurrencyRecheck = .milliseconds(50)
    timings.longPollTimeout = .seconds(5)
    timings.postTimeout = .seconds(5)
    return timings
}

func testConfiguration(concurrency: Int = 1, environment: [String: String] = [:]) throws -> WorkerConfiguration {
    var config = try WorkerConfiguration.fromEnvironment(environment)
    config.concurrency = concurrency
    config.timings = fastTimings()
    return config
}

/// Fails instead of hanging when the loop under test does not finish.
func withTimeout<T: Sendable>(
    _ timeout: Duration = .seconds(20), _ operation: @escaping @Sendable () async throws -> T
) async throws -> T {
    try await withThrowingTaskGroup(of: T.self) { group in
        group.addTask { try await operation() }
        group.addTask {
            try await Task.sleep(for: timeout)
            throw TimeoutError(what: "the operation", timeout: timeout)
        }
        let result = try await group.next()!
        group.cancelAll()
        return result
    }
}

/// Runs a loop over `source` while `body` runs, then stops it and waits for it to return.
func withLoop(
    source: any JobSource, handler: some RawJobHandler, options: WorkerOptions = WorkerOptions(),
    configuration: WorkerConfiguration? = nil, logger: Logger = Logger(label: "test"),
    _ body: @escaping @Sendable (WorkerLoop) async throws -> Void
) async throws {
    let config = try configuration ?? testConfiguration()
    let loop = WorkerLoop(source: source, handler: handler, options: options, configuration: config, logger: logger)
    let running = Task { await loop.run() }
    do {
        try await withTimeout { try await body(loop) }
    } catch {
        loop.stop()
        running.cancel()
        throw error
    }
    loop.stop()
    try await withTimeout { await running.value }
}

/// Counts calls and the most running at once.
final class Gauge: Sendable {
    private let state = Mutex<(running: Int, peak: Int, calls: Int)>((0, 0, 0))
    func enter() { state.withLock { $0.running += 1; $0.calls += 1; $0.peak = max($0.peak, $0.running) } }
    func leave() { state.withLock { $0.running -= 1 } }
    var peak: Int { state.withLock { $0.peak } }
    var calls: Int { state.withLock { $0.calls } }
}

/// A log handler that keeps what it is given, for assertions on log output.
final class LogCollector: Sendable {
    let lines = Mutex<[String]>([])
    var all: [String] { lines.withLock { $0 } }

    func logger(format: RunPodLogHandler.Format = .text, level: Logger.Level = .trace) -> Logger {
        Logger(label: "test") { label in
            RunPodLogHandler(label: label, format: format, level: level) { line in
                self.lines.withLock { $0.append(line) }
            }
        }
    }
}

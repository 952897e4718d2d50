import Logging
import Synchronization
import WorkerRuntime

/// A log handler that keeps what it is given, for assertions on log output.
package final class LogCollector: Sendable {
    let lines = Mutex<[String]>([])
    package var all: [String] { lines.withLock { $0 } }

    package init() {}

    package func logger(format: RunPodLogHandler.Format = .text, level: Logger.Level = .trace) -> Logger {
        Logger(label: "test") { label in
            RunPodLogHandler(label: label, format: format, level: level) { line in
                self.lines.withLock { $0.append(line) }
            }
        }
    }
}

/// Counts calls and the most running at once.
package final class Gauge: Sendable {
    private let state = Mutex<(running: Int, peak: Int, calls: Int)>((0, 0, 0))
    package init() {}
    package func enter() { state.withLock { $0.running += 1; $0.calls += 1; $0.peak = max($0.peak, $0.running) } }
    package func leave() { state.withLock { $0.running -= 1 } }
    package var peak: Int { state.withLock { $0.peak } }
    package var calls: Int { state.withLock { $0.calls } }
}

import CoreMetrics
import CurlHTTP
import Logging
import Synchronization
import WorkerRuntime
import WorkerRuntimeTesting

/// Short waits so protocol timings are exercised in milliseconds.
package func fastTimings() -> WorkerTimings {
    var timings = WorkerTimings()
    timings.resultRetryDelays = [.milliseconds(20), .milliseconds(30)]
    timings.tooManyRequestsDelay = .milliseconds(300)
    timings.stopPollDelay = .milliseconds(50)
    timings.backoffBase = .milliseconds(20)
    timings.backoffCap = .milliseconds(200)
    timings.concurrencyRecheck = .milliseconds(50)
    timings.longPollTimeout = .seconds(5)
    timings.postTimeout = .seconds(5)
    timings.resultRetryBase = .milliseconds(20)
    timings.resultRetryCap = .milliseconds(100)
    timings.resultRetryBudget = .seconds(3)
    timings.deliveryGrace = .seconds(1)
    return timings
}

package func testConfiguration(concurrency: Int = 1, environment: [String: String] = [:]) throws -> WorkerConfiguration {
    var config = try WorkerConfiguration.fromEnvironment(environment)
    config.concurrency = concurrency
    config.timings = fastTimings()
    return config
}

/// One HTTP client for the tests of this target that need the runtime's (the platform client,
/// the passthrough); it lives as long as the test process.
package let testHTTPClient = CurlHTTPClient(name: "runtime-tests")

/// A context as the runtime builds one, around `handler`.
package func testContext(
    handler: some RawJobHandler, options: WorkerOptions = WorkerOptions(), configuration: WorkerConfiguration,
    logger: Logger = Logger(label: "test"), metrics: any MetricsFactory = NOOPMetricsHandler.instance
) -> WorkerContext {
    WorkerContext(
        handler: handler, options: options, configuration: configuration, logger: logger, httpClient: testHTTPClient,
        metrics: WorkerMetrics(factory: metrics))
}

/// Runs a loop over `source` while `body` runs, then stops it and waits for it to return.
package func withLoop(
    source: any JobSource, handler: some RawJobHandler, options: WorkerOptions = WorkerOptions(),
    configuration: WorkerConfiguration? = nil, logger: Logger = Logger(label: "test"),
    metrics: any MetricsFactory = NOOPMetricsHandler.instance,
    _ body: @escaping @Sendable (WorkerLoop) async throws -> Void
) async throws {
    let config = try configuration ?? testConfiguration()
    let loop = WorkerLoop(
        source: source,
        context: testContext(handler: handler, options: options, configuration: config, logger: logger, metrics: metrics))
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

import Logging
import MetricsTestKit
import ServiceLifecycle
import Synchronization
import Testing
import TestSupport
import WorkerJSON
import WorkerRuntimeTesting

@testable import WorkerRuntime

/// What happened, in order, across the handler, a service of the handler's and the platform.
final class Timeline: Sendable {
    private let events = Mutex<[String]>([])
    func record(_ event: String) { events.withLock { $0.append(event) } }
    var all: [String] { events.withLock { $0 } }
    func index(of event: String) -> Int? { all.firstIndex(of: event) }
}

/// A connection pool's stand-in: runs until graceful shutdown.
struct RecordingService: Service {
    let timeline: Timeline
    func run() async throws {
        timeline.record("service running")
        try? await gracefulShutdown()
        timeline.record("service stopped")
    }
}

/// Records its lifecycle; each job sleeps `input.sleep` seconds.
struct LifecycleHandler: JSONJobHandler {
    let timeline: Timeline
    func start() async throws { timeline.record("handler started") }
    func shutdown() async throws { timeline.record("handler shut down") }
    func handle(_ input: JSONValue, context: JobContext) async throws -> JSONValue {
        timeline.record("job \(context.id) started")
        try await Task.sleep(for: .milliseconds(Int64((input["sleep"]?.doubleValue ?? 0) * 1000)))
        timeline.record("job \(context.id) finished")
        return input
    }
}

@Suite("The runtime as a swift-service-lifecycle service", .defaultPass)
struct RuntimeServiceTests {
    @Test("services start first and stop last; the handler shuts down after the job in flight has posted its result")
    func lifecycleOrder() async throws {
        let platform = MockPlatform()
        try await platform.run { platform in
            let timeline = Timeline()
            let logs = LogCollector()
            let runtime = WorkerRuntime(
                handler: JSONHandlerAdapter(handler: LifecycleHandler(timeline: timeline)), options: WorkerOptions(), features: [],
                services: [RecordingService(timeline: timeline)], logger: logs.logger(), arguments: [],
                environment: platform.environment())
            let group = ServiceGroup(
                configuration: .init(services: [.init(service: runtime)], logger: Logger(label: "test-group")))
            let running = Task { try await group.run() }
            platform.enqueue(["id": "slow", "input": ["sleep": 0.4]])
            try await waitUntil("the job to start") { timeline.index(of: "job slow started") != nil }
            await group.triggerGracefulShutdown()
            try await withTimeout { try await running.value }

            let events = timeline.all
            let order = ["service running", "handler started", "job slow started", "job slow finished", "handler shut down", "service stopped"]
            #expect(order.compactMap { events.firstIndex(of: $0) } == Array(0..<order.count), "\(events)")
            // The result reached the platform before the handler was told to shut down.
            #expect(platform.requests("job-done").map(\.json) == [["output": ["sleep": 0.4]]])
            // The logger given to the runtime is the one it uses.
            #expect(logs.all.contains { $0.contains("Starting Serverless Worker") })
        }
    }

    @Test("a runtime runs once: a second run is an error that says so")
    func runsOnce() async throws {
        let runtime = WorkerRuntime(
            handler: JSONHandlerAdapter(handler: LifecycleHandler(timeline: Timeline())), options: WorkerOptions(), features: [], services: [],
            logger: Logger(label: "test"), arguments: ["--test-input", #"{"input": {"sleep": 0}}"#], environment: [:])
        try await runtime.run()
        do {
            try await runtime.run()
            Issue.record("a second run was accepted")
        } catch let error as WorkerRuntimeError {
            #expect(error == .alreadyRunning)
            #expect(error.description.contains("runs once"))
        }
    }

    @Test("without /proc the worker refuses to start, saying what is missing and why it matters")
    func processFilesystemMissing() throws {
        #if os(Linux)
        try WorkerRuntime.checkProcessFilesystem()
        do {
            try WorkerRuntime.checkProcessFilesystem(probe: "/proc-not-mounted/self/stat")
            Issue.record("a missing /proc was accepted")
        } catch {
            #expect(error.exitCode == 1)
            #expect(error.description.hasPrefix("/proc is not mounted (/proc-not-mounted/self/stat: No such file or directory)"))
            #expect(error.description.contains("/proc/<thread>/stat"))
        }
        #endif
    }

    @Test("a failed one-shot job, a failed start-up and a mode without its feature are errors from run()")
    func failures() async throws {
        struct FailingStart: RawJobHandler {
            func start() async throws { throw TestFailure(message: "no model") }
            func handle(_ job: Job, output: JobOutputWriter, context: JobContext) async throws {}
        }
        let failingJob = WorkerRuntime(
            handler: TestEchoHandler(), options: WorkerOptions(), features: [], services: [], logger: Logger(label: "test"),
            arguments: ["--test-input", #"{"input": {"fail": "boom"}}"#], environment: [:])
        await #expect(throws: WorkerRuntimeError.jobFailed("local_test")) { try await failingJob.run() }
        let failingStart = WorkerRuntime(
            handler: FailingStart(), options: WorkerOptions(), features: [], services: [], logger: Logger(label: "test"),
            arguments: ["--test-input", #"{"input": 1}"#], environment: [:])
        await #expect(throws: WorkerRuntimeError.startupFailed) { try await failingStart.run() }
        let noServer = WorkerRuntime(
            handler: TestEchoHandler(), options: WorkerOptions(), features: [], services: [], logger: Logger(label: "test"),
            arguments: ["--local"], environment: [:])
        do {
            try await noServer.run()
            Issue.record("--local ran without the endpoint server")
        } catch {
            #expect("\(error)".contains("features: [.endpointServer()]"))
        }
    }

    @Test("queue mode records job metrics (count by status, duration, in progress) through swift-metrics")
    func queueMetrics() async throws {
        let metrics = TestMetrics()
        let source = InMemoryJobSource()
        source.enqueue(["id": "ok", "input": 1], ["id": "bad", "input": ["fail": "x"]])
        try await withLoop(source: source, handler: TestEchoHandler(), metrics: metrics) { _ in
            _ = try await source.waitForResults(2)
        }
        #expect(metrics.counterTotal(label: "worker_jobs_total", dimensions: [("status", "COMPLETED")]) == 1)
        #expect(metrics.counterTotal(label: "worker_jobs_total", dimensions: [("status", "FAILED")]) == 1)
        #expect(try metrics.expectTimer("worker_job_duration_seconds").values.count == 2)
        #expect(try metrics.expectMeter("worker_jobs_in_progress").lastValue == 0)
    }

    @Test("typed handlers report health like raw ones; the typed closure and streaming closure forms run")
    func typedHealthAndClosures() async throws {
        struct Unwell: JobHandler {
            func handle(_ input: Int, context: JobContext) async throws -> Int { input }
            var isHealthy: Bool { false }
        }
        #expect(!CodableHandlerAdapter(handler: Unwell()).isHealthy)
        let typed = WorkerRuntime { (input: [Int], _: JobContext) async throws -> Int in input.reduce(0, +) }
        #expect(try await typed.test([1, 2, 3]).output == 6)
        let streaming = WorkerRuntime(streaming: { input, _, stream in try await stream.yield(input) })
        #expect(try await streaming.test("x").chunks == ["x"])
    }
}

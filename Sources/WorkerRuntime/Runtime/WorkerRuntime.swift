#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import ArgumentParser
import Dispatch
import Synchronization
import Logging
import ServiceLifecycle
import UnixSignals

/// A handler plus its runtime settings: `await WorkerRuntime(handler: …).runAndExit()` is a worker.
public struct WorkerRuntime: Sendable {
    public let handler: any RawJobHandler
    public let options: WorkerOptions

    public init(handler: some RawJobHandler, options: WorkerOptions = WorkerOptions()) {
        self.handler = handler
        self.options = options
    }

    public init(handler: some JobHandler, options: WorkerOptions = WorkerOptions()) {
        self.init(handler: CodableHandlerAdapter(handler), options: options)
    }

    public init(handler: some JSONJobHandler, options: WorkerOptions = WorkerOptions()) {
        self.init(handler: JSONHandlerAdapter(handler), options: options)
    }

    public init(handler: some StreamingJobHandler, options: WorkerOptions = WorkerOptions()) {
        self.init(handler: StreamingHandlerAdapter(handler), options: options)
    }

    /// A closure worker: `WorkerRuntime { input, context in input }`.
    public init(
        options: WorkerOptions = WorkerOptions(),
        _ body: @escaping @Sendable (JSONValue, JobContext) async throws -> JSONValue
    ) {
        self.init(handler: ClosureHandler(body), options: options)
    }

    /// Runs in the mode the environment and flags select, then exits with its status.
    public func runAndExit(
        arguments: [String] = Array(CommandLine.arguments.dropFirst()),
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) async -> Never {
        exit(await run(arguments: arguments, environment: environment))
    }

    /// The same, for a synchronous `main` (what the bundled handlers use): the main thread parks
    /// while the worker runs on the concurrency pool. An async `main` gives its thread to
    /// `dispatch_main`, which ends it with `pthread_exit`; unwinding out of `main` faults in the
    /// binary's unwind tables, about 0.6 MB of an idle worker's resident memory.
    public func runAndExit(
        arguments: [String] = Array(CommandLine.arguments.dropFirst()),
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) -> Never {
        let finished = DispatchSemaphore(value: 0)
        let status = Mutex<Int32>(1)
        Task.detached {
            let code = await run(arguments: arguments, environment: environment)
            status.withLock { $0 = code }
            finished.signal()
        }
        finished.wait()
        exit(status.withLock { $0 })
    }

    /// Runs in the mode the environment and flags select; returns the process exit status.
    public func run(
        arguments: [String] = Array(CommandLine.arguments.dropFirst()),
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) async -> Int32 {
        let parsed: WorkerArguments
        do {
            parsed = try WorkerArguments.parse(arguments)
        } catch {
            RunPodLogHandler.writeToStandardError(WorkerArguments.fullMessage(for: error) + "\n")
            return WorkerArguments.exitCode(for: error).rawValue
        }
        var configuration: WorkerConfiguration
        do {
            configuration = try WorkerConfiguration.fromEnvironment(environment)
            if let level = parsed.logLevel {
                guard let parsedLevel = Logger.Level(runpodName: level) else {
                    throw ConfigurationError.invalidValue("--log-level", level, expected: "TRACE, DEBUG, INFO, WARN or ERROR")
                }
                configuration.logLevel = parsedLevel
            }
            if let concurrency = parsed.concurrency {
                guard concurrency >= 1 else {
                    throw ConfigurationError.invalidValue("--concurrency", "\(concurrency)", expected: "a whole number of 1 or more")
                }
                configuration.concurrency = concurrency
            }
        } catch {
            RunPodLogHandler.writeToStandardError("Worker start-up failed: \(error)\n")
            return 1
        }
        let logger = Self.bootstrapLogging(configuration)
        return await run(mode: WorkerMode.resolve(arguments: parsed, configuration: configuration),
                         configuration: configuration, logger: logger)
    }

    /// The composition root shared by `run` and the tests.
    public func run(mode: WorkerMode, configuration: WorkerConfiguration, logger: Logger) async -> Int32 {
        switch mode {
        case .oneShot(let testInput):
            let job: Job
            do {
                job = try OneShotRun.loadJob(argument: testInput, fileURL: URL(fileURLWithPath: "test_input.json"))
            } catch {
                logger.error("\(error)")
                return 1
            }
            guard await startHandler(logger: logger) else { return 1 }
            let run = OneShotRun(
                handler: effectiveHandler(configuration), options: options, configuration: configuration, logger: logger,
                print: { Swift.print($0) })
            return await run.run(job)

        case .server(let server):
            return await runServer(server, configuration: configuration, logger: logger)

        case .queue(let platform):
            logger.info("--- Starting Serverless Worker |  Version \(WorkerRuntimeVersion.current) ---")
            guard await startHandler(logger: logger) else { return 1 }
            let source = RunPodJobSource(configuration: configuration, platform: platform)
            await runQueueWorker(source: source, configuration: configuration, logger: logger)
            return 0
        }
    }

    /// The queue worker as a service: SIGTERM or SIGINT stops taking jobs and lets running ones
    /// finish and post before returning.
    public func runQueueWorker(source: any JobSource, configuration: WorkerConfiguration, logger: Logger) async {
        let loop = WorkerLoop(
            source: source, handler: effectiveHandler(configuration), options: options, configuration: configuration, logger: logger)
        let stopHeartbeat = Self.startHeartbeat(configuration: configuration, logger: logger) { loop.jobsInProgress }
        let group = ServiceGroup(
            configuration: ServiceGroupConfiguration(
                services: [.init(service: LoopService(loop: loop))],
                gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        do {
            try await group.run()
        } catch {
            logger.error("Worker stopped with an error: \(error)")
        }
        stopHeartbeat()
        logger.info("Worker stopped.")
    }

    /// Starts the heartbeat when the platform expects one; returns how to stop it.
    public static func startHeartbeat(
        configuration: WorkerConfiguration, logger: Logger, inProgress: @escaping @Sendable () -> [String]
    ) -> @Sendable () -> Void {
        guard configuration.heartbeatEnabled, let platform = configuration.platform, let key = configuration.apiKey else {
            logger.debug("Heartbeat off: it needs RUNPOD_WEBHOOK_PING, RUNPOD_AI_API_KEY and RUNPOD_POD_ID.")
            return {}
        }
        let heartbeat = Heartbeat(
            urls: PlatformURLs(endpoints: platform), apiKey: key, interval: configuration.pingInterval,
            logger: logger, inProgress: inProgress)
        heartbeat.start()
        return { heartbeat.stop() }
    }

    private func startHandler(logger: Logger) async -> Bool {
        do {
            try await handler.start()
            return true
        } catch {
            logger.error("The handler's start-up failed: \(error)")
            return false
        }
    }

    static func bootstrapLogging(_ configuration: WorkerConfiguration) -> Logger {
        let format: RunPodLogHandler.Format = configuration.endpointID == nil ? .text : .json
        let level = configuration.logLevel
        LoggingSystem.bootstrap { label in RunPodLogHandler(label: label, format: format, level: level) }
        return Logger(label: "worker")
    }
}

struct LoopService: Service {
    let loop: WorkerLoop
    func run() async throws { await loop.run() }
}

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
import Logging
import ServiceLifecycle
import Synchronization
import UnixSignals
import WorkerJSON

extension WorkerRuntime {
    /// Runs the worker as the whole process and exits with its status: 0 when it stopped cleanly,
    /// 1 when it failed (a bad flag or variable, a failed start-up, a failed one-shot job).
    /// SIGTERM and SIGINT shut it down gracefully. Unless a logger was given, or the process set
    /// up logging itself, logs use RunPod's format (JSON lines when `RUNPOD_ENDPOINT_ID` is set).
    public func runAndExit() async -> Never {
        exit(await runForExitStatus())
    }

    /// The same, for a synchronous `main` (what the bundled handlers use): the main thread parks
    /// while the worker runs on the concurrency pool. An async `main` gives its thread to
    /// `dispatch_main`, which ends it with `pthread_exit`; unwinding out of `main` faults in the
    /// binary's unwind tables, about 0.6 MB of an idle worker's resident memory.
    public func runAndExit() -> Never {
        // Checked here too, before the first task: without /proc the pool may stop the process
        // before `runForExitStatus` gets to report it.
        do {
            try Self.checkProcessFilesystem()
        } catch {
            RunPodLogHandler.writeToStandardError("Worker start-up failed: \(error)\n")
            exit(1)
        }
        Self.parkMainThread { await self.runForExitStatus() }
    }

    /// For a `main` whose handler reads configuration of its own: `build` gets the process's
    /// environment, and a failure to build is reported as the runtime reports its own start-up
    /// errors (exit status 1).
    public static func runAndExit(_ build: (_ environment: [String: String]) throws -> WorkerRuntime) -> Never {
        // Before `build`, whose own errors (a missing configuration) would otherwise hide it.
        do {
            try checkProcessFilesystem()
        } catch {
            RunPodLogHandler.writeToStandardError("Worker start-up failed: \(error)\n")
            exit(1)
        }
        let environment = ProcessInfo.processInfo.environment
        // Before `build`: loggers the handler makes while it is built (its store's, its
        // clients') then write RunPod's format too, not swift-log's default one.
        _ = bootstrapLogging(earlyConfiguration(environment))
        let runtime: WorkerRuntime
        do {
            runtime = try build(environment)
        } catch {
            RunPodLogHandler.writeToStandardError("Worker start-up failed: \(error)\n")
            exit(1)
        }
        runtime.runAndExit()
    }

    func runForExitStatus() async -> Int32 {
        let resolved: Resolved
        do {
            resolved = try resolve()
        } catch {
            if error.isHelp {
                print(error.description)
            } else {
                RunPodLogHandler.writeToStandardError(
                    error.exitCode == 1 ? "Worker start-up failed: \(error)\n" : "\(error)\n")
            }
            return error.exitCode
        }
        if resolved.listTools {
            print((try? JSONValue.object(["tools": resolved.tools.listing]).jsonString()) ?? "{}")
            return 0
        }
        let logger = self.logger ?? Self.bootstrapLogging(resolved.configuration)
        let group = ServiceGroup(
            configuration: ServiceGroupConfiguration(
                services: [
                    // A worker that ends by itself (one-shot, refresh) ends the process cleanly.
                    .init(service: self, successTerminationBehavior: .gracefullyShutdownGroup)
                ], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        let impatience = Task { await Self.exitOnSecondSignal(logger: logger) }
        defer { impatience.cancel() }
        do {
            try await group.run()
            return 0
        } catch {
            logger.error("The worker stopped: \(error)")
            return 1
        }
    }

    /// The first SIGTERM or SIGINT starts a graceful shutdown (the group's); a second one means
    /// whoever sent it will not wait: exit now, saying what is abandoned.
    private static func exitOnSecondSignal(logger: Logger) async {
        var seen = 0
        for await signal in await UnixSignalsSequence(trapping: .sigterm, .sigint) {
            seen += 1
            guard seen >= 2 else { continue }
            logger.warning("Second \(signal) during shutdown: exiting now; running jobs and undelivered results are abandoned.")
            exit(signal == .sigint ? 130 : 143)
        }
    }

    /// The log format and level as the environment and `--log-level` give them, for setting up
    /// logging before the runtime is built; a value not understood is reported later, by `resolve`.
    static func earlyConfiguration(_ environment: [String: String]) -> WorkerConfiguration {
        var configuration = (try? WorkerConfiguration.fromEnvironment(environment)) ?? WorkerConfiguration()
        if let name = (try? WorkerArguments.parse(Array(CommandLine.arguments.dropFirst())))?.logLevel,
            let level = Logger.Level(runpodName: name)
        {
            configuration.logLevel = level
        }
        return configuration
    }

    /// Sets up RunPod's log format for the process, unless something already chose a backend
    /// (swift-log's default handler means nothing did), and returns the runtime's logger.
    static func bootstrapLogging(_ configuration: WorkerConfiguration) -> Logger {
        let format: RunPodLogHandler.Format = configuration.endpointID == nil ? .text : .json
        let level = configuration.logLevel
        if Logger(label: "probe").handler is StreamLogHandler {
            LoggingSystem.bootstrap { label in RunPodLogHandler(label: label, format: format, level: level) }
        }
        // Otherwise the process chose its own backend before running the worker: the runtime's
        // lines go there too, as the author wants.
        return Logger(label: "worker")
    }

    private static func parkMainThread(_ body: @escaping @Sendable () async -> Int32) -> Never {
        let finished = DispatchSemaphore(value: 0)
        let status = Mutex<Int32>(1)
        Task.detached {
            let code = await body()
            status.withLock { $0 = code }
            finished.signal()
        }
        finished.wait()
        exit(status.withLock { $0 })
    }
}

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import ArgumentParser
import Logging
import ServiceLifecycle
import Synchronization
import WorkerJSON

/// A handler plus how to run it. As a swift-service-lifecycle `Service` it runs once, in the mode
/// the flags and environment select (`--test-input`, `--local`, the platform's queue, `PORT`);
/// `runAndExit()` runs it as a whole process, with signal handling and logging set up.
///
/// ```swift
/// WorkerRuntime(features: [.endpointServer()]) { input, context in ["echo": input] }.runAndExit()
/// ```
public final class WorkerRuntime: Service, Sendable {
    package let handler: any RawJobHandler
    package let options: WorkerOptions
    package let features: [WorkerFeature]
    package let services: [any Service]
    let logger: Logger?
    let arguments: [String]
    let environment: [String: String]
    /// The program's file name: the worker's default name for agents.
    let executable: String
    let launch = Mutex(Launch())

    /// The environment the runtime reads its configuration from (the test harness reads it too).
    package var testEnvironment: [String: String] { environment }
    /// The logger given to `init`, if any.
    package var testLogger: Logger? { logger }

    /// The designated initializer; tests in this package pass the flags and the environment.
    package init(
        handler: any RawJobHandler, options: WorkerOptions, features: [WorkerFeature], services: [any Service],
        logger: Logger?, arguments: [String]? = nil, environment: [String: String]? = nil
    ) {
        self.handler = handler
        self.options = options
        self.features = features
        self.services = services
        self.logger = logger
        self.arguments = arguments ?? Array(CommandLine.arguments.dropFirst())
        self.executable = arguments == nil ? CommandLine.arguments.first ?? "worker" : "worker"
        self.environment = environment ?? ProcessInfo.processInfo.environment
    }

    /// A raw handler: it decides per job whether to respond once or stream.
    ///
    /// - Parameters:
    ///   - features: optional parts of the runtime, such as `.endpointServer()` (module
    ///     `WorkerEndpointServer`) for `--local` and load-balancing endpoints.
    ///   - services: services of the handler's own (a connection pool, a model loader), run in the
    ///     same service group: started before the worker, stopped after its jobs finish.
    ///   - logger: the runtime's logger; nil makes one (and lets `runAndExit` set up RunPod's log
    ///     format for the process).
    public convenience init(
        handler: some RawJobHandler, options: WorkerOptions = WorkerOptions(), features: [WorkerFeature] = [],
        services: [any Service] = [], logger: Logger? = nil
    ) {
        self.init(handler: handler as any RawJobHandler, options: options, features: features, services: services, logger: logger)
    }

    /// A typed handler: the input decoded from the job, the output encoded as its result.
    public convenience init(
        handler: some JobHandler, options: WorkerOptions = WorkerOptions(), features: [WorkerFeature] = [],
        services: [any Service] = [], logger: Logger? = nil
    ) {
        self.init(handler: CodableHandlerAdapter(handler: handler), options: options, features: features, services: services, logger: logger)
    }

    /// A handler over JSON values.
    public convenience init(
        handler: some JSONJobHandler, options: WorkerOptions = WorkerOptions(), features: [WorkerFeature] = [],
        services: [any Service] = [], logger: Logger? = nil
    ) {
        self.init(handler: JSONHandlerAdapter(handler: handler), options: options, features: features, services: services, logger: logger)
    }

    /// A streaming handler.
    public convenience init(
        handler: some StreamingJobHandler, options: WorkerOptions = WorkerOptions(), features: [WorkerFeature] = [],
        services: [any Service] = [], logger: Logger? = nil
    ) {
        self.init(
            handler: StreamingHandlerAdapter(handler: handler), options: options, features: features, services: services,
            logger: logger)
    }

    /// A closure over JSON: `WorkerRuntime { input, context in input }`.
    public convenience init(
        options: WorkerOptions = WorkerOptions(), features: [WorkerFeature] = [], services: [any Service] = [],
        logger: Logger? = nil, _ body: @escaping @Sendable (JSONValue, JobContext) async throws -> JSONValue
    ) {
        self.init(handler: ClosureHandler(body: body), options: options, features: features, services: services, logger: logger)
    }

    /// A closure over typed values: `WorkerRuntime { (input: Request, context) -> Reply in … }`.
    public convenience init<Input: Decodable, Output: Encodable>(
        options: WorkerOptions = WorkerOptions(), features: [WorkerFeature] = [], services: [any Service] = [],
        logger: Logger? = nil, _ body: @escaping @Sendable (Input, JobContext) async throws -> Output
    ) {
        self.init(handler: TypedClosureHandler(body: body), options: options, features: features, services: services, logger: logger)
    }

    /// A streaming closure: `WorkerRuntime(streaming: { input, context, stream in try await stream.yield(…) })`.
    public convenience init(
        options: WorkerOptions = WorkerOptions(), features: [WorkerFeature] = [], services: [any Service] = [],
        logger: Logger? = nil, streaming body: @escaping @Sendable (JSONValue, JobContext, JobOutputWriter) async throws -> Void
    ) {
        self.init(handler: StreamingClosureHandler(body: body), options: options, features: features, services: services, logger: logger)
    }
}

extension WorkerRuntime {
    /// What one launch resolved, kept so that `runAndExit` and `run` agree (the worker id is
    /// random when `RUNPOD_POD_ID` is unset), and whether `run` was called.
    struct Launch {
        var resolved: Result<Resolved, WorkerRuntimeError>?
        var started = false
    }

    package struct Resolved: Sendable {
        package let mode: WorkerMode
        package let configuration: WorkerConfiguration
        /// Every feature's settings, as its `configure` read them.
        package let settings: FeatureSettings
        package let tools: ToolCatalog
        /// `--list-tools`: print the tools and exit.
        let listTools: Bool
        /// `--rp_debugger` was passed: accepted, and a warning says it does nothing here.
        var rpDebugger = false
    }

    /// Parses the flags and reads the environment, once.
    func resolve() throws(WorkerRuntimeError) -> Resolved {
        let result = launch.withLock { launch in
            if let resolved = launch.resolved { return resolved }
            let resolved = Result { () throws(WorkerRuntimeError) -> Resolved in
                try Self.checkProcessFilesystem()
                return try Self.resolve(
                    arguments: arguments, environment: environment, options: options, features: features, executable: executable)
            }
            launch.resolved = resolved
            return resolved
        }
        return try result.get()
    }

    package static func resolve(
        arguments: [String], environment: [String: String], options: WorkerOptions = WorkerOptions(), features: [WorkerFeature] = [],
        executable: String = "worker"
    ) throws(WorkerRuntimeError) -> Resolved {
        let featureFlags = features.flatMap(\.flags)
        let parsed: WorkerArguments
        do {
            parsed = try WorkerArguments.parse(arguments)
        } catch {
            let exitCode = WorkerArguments.exitCode(for: error).rawValue
            let help = exitCode == 0 ? UnknownArguments.help(featureFlags) : ""
            throw .arguments(WorkerArguments.fullMessage(for: error) + help, exitCode: exitCode)
        }
        let flags = try UnknownArguments.take(parsed.unrecognized, featureFlags: featureFlags, handlerFlags: options.handlerFlags)
        var configuration: WorkerConfiguration
        var configured: [FeatureConfiguration] = []
        do {
            configuration = try WorkerConfiguration.fromEnvironment(environment)
            if let level = parsed.logLevel {
                guard let parsedLevel = Logger.Level(runpodName: level) else {
                    throw ConfigurationError.invalidValue("--log-level", level, expected: "TRACE, DEBUG, INFO, WARN or ERROR")
                }
                configuration.logLevel = parsedLevel
            }
            if let concurrency = parsed.concurrency {
                // 0: a fleet gateway that takes no jobs, as WORKER_CONCURRENCY=0.
                let fleet = environment["QUEUE_URL"].map { !$0.isEmpty } ?? false
                guard (1...10_000).contains(concurrency) || (concurrency == 0 && fleet) else {
                    throw ConfigurationError.invalidValue(
                        "--concurrency", "\(concurrency)", expected: "a whole number from 1 to 10000 (0 only for a fleet gateway, with QUEUE_URL set)")
                }
                configuration.concurrency = concurrency
            }
            // A fleet variable in a worker built without the fleet would be ignored: say so instead.
            if let queue = environment["QUEUE_URL"], !queue.isEmpty, !features.contains(where: { $0.name == "fleet" }) {
                throw ConfigurationError.invalidValue(
                    "QUEUE_URL", "(set)", expected: "nothing: this worker was built without the fleet; add .fleet() (WorkerFleet) to its features")
            }
            let setup = FeatureSetup(environment: environment, flags: flags, core: configuration, options: options)
            for feature in features {
                if let configure = feature.configure { configured.append(try configure(setup)) }
            }
        } catch let error as ConfigurationError {
            // A flag's bad value is a usage error (64), as an unknown flag is; a variable's is not.
            if error.variable.hasPrefix("-") { throw .arguments(error.description, exitCode: UnknownArguments.usageExit) }
            throw .configuration(error)
        } catch {
            throw .configuration(.invalidValue("the environment", "", expected: "\(error)"))
        }
        let mode = WorkerMode.resolve(testInput: parsed.testInput, configuration: configuration, claims: configured.compactMap(\.mode))
        for feature in configured {
            do throws(ConfigurationError) {
                try feature.check?(mode)
            } catch {
                throw .arguments(error.description, exitCode: UnknownArguments.usageExit)
            }
        }
        let tools = try ToolCatalog(options: options, executable: executable)
        return Resolved(
            mode: mode, configuration: configuration, settings: FeatureSettings(configured.compactMap(\.settings)), tools: tools,
            listTools: parsed.listTools, rpDebugger: parsed.rpDebugger)
    }
}

import Logging
import ServiceLifecycle

/// The production queue worker as the runtime's main service: starts the handler, then takes jobs
/// until a graceful shutdown (or, with `refreshWorker`, the first finished job), lets the running
/// ones finish and post, and shuts the handler down. The heartbeat runs on its own thread meanwhile.
struct QueueWorkerService: Service {
    let context: WorkerContext
    let platform: WorkerConfiguration.PlatformEndpoints

    func run() async throws {
        let logger = context.logger
        logger.info("--- Starting Serverless Worker |  Version \(WorkerRuntimeVersion.current) ---")
        guard await context.startHandler() else { throw WorkerRuntimeError.startupFailed }
        let source = RunPodJobSource(configuration: context.configuration, platform: platform, client: context.httpClient)
        let loop = WorkerLoop(source: source, context: context)
        let stopHeartbeat = Heartbeat.start(configuration: context.configuration, client: context.httpClient, logger: logger) {
            loop.jobsInProgress
        }
        await loop.run()
        stopHeartbeat()
        await context.shutdownHandler()
        logger.info("Worker stopped.")
    }
}

import Logging
import ServiceLifecycle
import WorkerEndpointServer
import WorkerRuntime

/// A fleet worker: starts the handler, runs the queue loop on the fleet's stream with its leases
/// kept, and on a graceful shutdown stops taking jobs, lets the running ones finish and post, and
/// shuts the handler down. In a gateway that takes jobs it runs beside the HTTP listener.
struct FleetWorkerService: Service {
    let source: FleetJobSource
    var store: FleetStore { source.store }
    var context: WorkerContext { source.context }

    func run() async throws {
        let logger = context.logger
        guard await context.startHandler() else { throw FleetStartError() }
        let loop = WorkerLoop(source: source, context: context)
        let rules = "\(max(1, context.configuration.concurrency)) job(s) at a time, lease \(store.settings.lease), MAX_ATTEMPTS=\(store.settings.maxAttempts)"
        logger.info("Fleet worker \(source.consumer) serving endpoint \(store.keys.endpoint) from \(store.redis.server) (\(rules))")
        let leases = Task { await source.keepLeases() }
        await loop.run()
        await source.drainDirect()
        leases.cancel()
        await leases.value
        source.finishStops()
        await context.shutdownHandler()
        logger.info("Fleet worker stopped.")
    }

    struct FleetStartError: Error, CustomStringConvertible {
        var description: String { "the handler's start-up failed; the fleet worker takes no jobs" }
    }
}

/// A gateway that takes no jobs (`--gateway-only`): ready at once, the handler never started.
struct FleetGatewayOnlyService: Service {
    let context: WorkerContext

    func run() async throws {
        context.health.set(.ready)
        try? await gracefulShutdown()
    }
}

/// The gateway's subscription to the endpoint's events, until shutdown; then the Redis
/// connections close.
struct FleetEventsService: Service {
    let events: FleetEvents
    let redis: FleetRedis

    func run() async throws {
        await cancelWhenGracefulShutdown { await events.run() }
        await redis.shutdown()
    }
}

/// The worker mode's main service: the fleet worker and, after it, the Redis connections closing.
struct FleetWorkerModeService: Service {
    let worker: FleetWorkerService
    let redis: FleetRedis

    func run() async throws {
        defer { Task { await redis.shutdown() } }
        try await worker.run()
    }
}

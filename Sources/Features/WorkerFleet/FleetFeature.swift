import Logging
import RedisClient
import ServiceLifecycle
import WorkerEndpointServer
import WorkerRuntime

extension WorkerFeature {
    /// Fleets (docs/fleet.md): any number of gateways and workers, on any number of machines,
    /// serve one endpoint through a Redis (`QUEUE_URL`), with RunPod's endpoint API unchanged.
    /// With an HTTP mode (`--local`, `PORT`) and `QUEUE_URL`, the endpoint server keeps its jobs
    /// in Redis and this process also takes jobs unless `--gateway-only`; with `QUEUE_URL` and no
    /// HTTP mode (or `--fleet-worker`), the process only takes jobs. Use with `.endpointServer()`.
    public static func fleet() -> WorkerFeature {
        WorkerFeature(
            name: "fleet", flags: [gatewayOnlyFlag, workerFlag],
            configure: { setup throws(ConfigurationError) in
                guard
                    let settings = try FleetSettings.read(
                        setup.environment, executable: CommandLine.arguments.first ?? "worker", concurrency: setup.core.concurrency,
                        flags: setup.flags)
                else { return FeatureConfiguration() }
                let mode = FeatureMode(name: FeatureMode.fleetWorkerName, settings: settings)
                return FeatureConfiguration(
                    settings: settings, mode: ModeClaim(mode, strength: settings.workerOnly ? .flag : .environment),
                    check: { chosen throws(ConfigurationError) in
                        if case .queue = chosen {
                            throw .invalidValue(
                                "QUEUE_URL", "(set)",
                                expected: "one queue per worker: RunPod's queue variables are set too; unset QUEUE_URL, or pass --fleet-worker to take the fleet's jobs")
                        }
                        if settings.workerOnly, chosen != .feature(mode) {
                            throw .invalidValue(
                                "--fleet-worker", "", expected: "no other mode (\(chosen)): a fleet worker takes jobs and serves no API")
                        }
                        // A gateway that takes no jobs needs something to serve: not the fleet's
                        // worker mode, nor a one-shot run (the HTTP modes and MCP over stdio serve).
                        let servesNothing: Bool
                        switch chosen {
                        case .oneShot: servesNothing = true
                        case .feature(let chosenMode): servesNothing = chosenMode == mode
                        case .queue: servesNothing = false
                        }
                        guard settings.gatewayOnly, servesNothing else { return }
                        let flag = setup.flags.isSet(gatewayOnlyFlag.name)
                        throw .invalidValue(
                            flag ? "--gateway-only" : "WORKER_CONCURRENCY", flag ? "" : "0",
                            expected: "an HTTP mode (--local, or PORT for load balancing): a gateway that takes no jobs serves the endpoint API")
                    })
            },
            serve: { mode, context in
                guard case .feature(let feature) = mode, feature.name == FeatureMode.fleetWorkerName, let settings = context.settings[FleetSettings.self] else { return nil }
                let redis = FleetRedis(settings: settings, logger: context.logger)
                let worker = FleetWorkerService(source: FleetJobSource(store: FleetStore(redis: redis), context: context))
                return FleetWorkerModeService(worker: worker, redis: redis)
            },
            contributions: [
                JobBackendProvider { context, limits in
                    guard let settings = context.settings[FleetSettings.self] else { return nil }
                    let redis = FleetRedis(settings: settings, logger: context.logger)
                    let store = FleetStore(redis: redis)
                    let events = FleetEvents(redis: redis, logger: context.logger)
                    // A gateway that takes jobs runs one itself, when a slot is free, as it queues it.
                    let source =
                        settings.gatewayOnly
                        ? nil : FleetJobSource(store: store, context: context, limits: limits) { id, report in events.deliverLocal(id, report) }
                    let backend = FleetBackend(store: store, events: events, limits: limits, logger: context.logger, local: source)
                    let jobs: any Service = source.map { FleetWorkerService(source: $0) } ?? FleetGatewayOnlyService(context: context)
                    let role = settings.gatewayOnly ? "taking no jobs: --gateway-only" : "also taking jobs"
                    context.logger.info("Fleet gateway for endpoint \(settings.endpoint) on \(settings.redis.server) (\(role))")
                    return JobBackendHosting(backend: backend, services: [FleetEventsService(events: events, redis: redis), jobs])
                }
            ])
    }
}

extension FeatureMode {
    static let fleetWorkerName = "fleet-worker"
}

private let gatewayOnlyFlag = FeatureFlag(
    ["--gateway-only"], help: "With QUEUE_URL and --local (or PORT): serve the fleet's endpoint API without taking jobs here.")
private let workerFlag = FeatureFlag(
    ["--fleet-worker"], help: "With QUEUE_URL: take the fleet's jobs only, even where an HTTP mode would be chosen.")

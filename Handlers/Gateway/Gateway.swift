import CurlHTTP
import EndpointClient
import GatewayCore
import Logging
import RedisClient
import ServiceLifecycle
import WorkerEndpointServer
import WorkerFleet
import WorkerMCP
import WorkerJSON
import WorkerOpenAI
import WorkerRuntime

/// The composition root, shared by `main` and the tests.
enum Gateway {
    /// `clients`: one per upstream with an endpoint-API `url` (tests pass scripted ones).
    static func makeRuntime(
        _ configuration: GatewayConfiguration, clients: [(any UpstreamJobs)?]? = nil, board: (any SharedBoard)? = nil
    ) -> WorkerRuntime {
        let pool = UpstreamPool(configuration: configuration, board: board)
        let http = CurlHTTPClient(name: "gateway")
        let calls = clients ?? endpointClients(configuration, http: http)
        let instance = GatewayHandler.newInstanceID()
        let tools = MCPUpstreams(
            configuration: configuration, http: http, own: [ownTool], serverName: "gateway", instructions: instructions, logger: Logger(label: "gateway"),
            instance: instance)
        var handler = GatewayHandler(
            router: TierRouter(configuration: configuration), pool: pool, clients: calls, openAI: GatewayOpenAI(pool: pool, client: http), tools: tools)
        handler.instance = instance
        // A streamed job's chunks are also its /runsync answer, as its upstream's would be.
        var options = WorkerOptions(returnAggregateStream: true, name: "gateway", instructions: instructions, tools: [ownTool])
        options.toolSource = tools
        // `/v2/{upstream}/run` names one upstream.
        options.recordsEndpointPath = true
        // The gateways a request passed: one that comes back is refused (`GatewayChain`).
        options.recordedHeaders = [GatewayChain.header: GatewayChain.jobField]
        // …and refused before anything else reads it when it has come back here (508).
        options.refusesRequest = { header in
            GatewayChain(header(GatewayChain.header)).refusal(at: instance).map { ($0.status, $0.message) }
        }
        return WorkerRuntime(
            handler: handler, options: options, features: [.endpointServer(), .mcp(), .fleet()],
            services: [HealthProbes(pool: pool, clients: calls, interval: configuration.probeInterval, board: board), MCPToolRefresh(tools: tools)]
                + (board.map { [SharedBoardSync(pool: pool, board: $0, logger: Logger(label: "gateway"))] } ?? []))
    }

    /// The gateway's own tool: a job sent through its routing. The upstreams' MCP tools follow it,
    /// named `<upstream>_<tool>` (`MCPUpstreams`).
    static let ownTool = WorkerTool(
        name: "gateway", title: "Run a job through the gateway",
        description: "Runs a job on the team's endpoints: the arguments are the job's input; input.tier picks a tier, else the gateway's rules do.",
        inputSchema: ["type": "object", "properties": ["tier": ["type": "string", "description": "The tier to run on (optional)."]]])

    /// `GATEWAY_CONFIG` (a file's path) or `GATEWAY_CONFIG_JSON` (the document itself, for
    /// platforms configured by variables, as RunPod's templates are): exactly one.
    static func configuration(_ environment: [String: String]) throws -> GatewayConfiguration {
        let path = environment["GATEWAY_CONFIG"].flatMap { $0.isEmpty ? nil : $0 }
        let inline = environment["GATEWAY_CONFIG_JSON"].flatMap { $0.isEmpty ? nil : $0 }
        switch (path, inline) {
        case (let path?, nil):
            return try GatewayConfiguration.load(path: path, environment: environment)
        case (nil, let text?):
            guard let json = try? JSONValue.parse(Array(text.utf8)) else {
                throw ConfigurationError.invalidValue("GATEWAY_CONFIG_JSON", "(set)", expected: "the gateway's configuration as JSON (docs/gateway.md); this is not JSON")
            }
            return try GatewayConfiguration.parse(json, environment: environment)
        case (_?, _?):
            throw ConfigurationError.invalidValue(
                "GATEWAY_CONFIG_JSON", "(set)", expected: "not beside GATEWAY_CONFIG: name the file or give the document, not both")
        case (nil, nil):
            throw ConfigurationError.invalidValue(
                "GATEWAY_CONFIG", "", expected: "the path of the gateway's JSON configuration (or the document itself in GATEWAY_CONFIG_JSON): its upstreams and routes (docs/gateway.md)")
        }
    }

    /// With `REDIS_URL`, the board replicas share their breakers and probes on, keyed by the
    /// gateway's name (`ENDPOINT_ID`, else RunPod's endpoint id, else "gateway").
    static func board(_ environment: [String: String]) throws -> (any SharedBoard)? {
        guard let configuration = try RedisConfiguration.fromEnvironment(environment) else { return nil }
        let name = [environment["ENDPOINT_ID"], environment["RUNPOD_ENDPOINT_ID"]].compactMap { $0 }.first { !$0.isEmpty } ?? "gateway"
        return RedisBoard(redis: try RedisClient(configuration: configuration), gateway: name)
    }

    static let instructions =
        "One front door for a team's endpoints: each job goes to the tier its input asks for (or the gateway's rules choose), "
        + "to the least busy healthy upstream there, with fallbacks when an upstream is down."

    /// An endpoint client per upstream that has a `url`, sharing one HTTP client (one curl thread),
    /// each with its own key (an inbound request's credentials are never passed on).
    static func endpointClients(_ configuration: GatewayConfiguration, http: CurlHTTPClient) -> [(any UpstreamJobs)?] {
        configuration.upstreams.map { upstream in
            guard let url = upstream.url, let endpoint = try? Endpoint(url, apiKey: upstream.apiKey) else { return nil }
            return EndpointUpstream(client: EndpointClient(endpoint: endpoint, http: http, requestTimeout: .seconds(30)))
        }
    }
}

/// Asks every endpoint-API upstream for its `/health` each `interval`: queue and workers for the
/// choice within a tier, success or failure for its breaker (a good probe closes one past its cooldown).
struct HealthProbes: Service {
    let pool: UpstreamPool
    let clients: [(any UpstreamJobs)?]
    let interval: Duration
    /// With replicas sharing a board, one of them probes each upstream per interval.
    var board: (any SharedBoard)? = nil

    func run() async throws {
        // Ends with the worker's graceful shutdown: a probe loop must not hold SIGTERM up.
        await cancelWhenGracefulShutdown { await probe() }
    }

    private func probe() async {
        while !Task.isCancelled {
            await withTaskGroup(of: Void.self) { group in
                for (index, client) in clients.enumerated() {
                    guard let client else { continue }
                    group.addTask {
                        let name = pool.upstreams[index].name
                        // Another replica probes it this interval; if the board fails, probe anyway.
                        if let board, (try? await board.claimProbe(name, interval: interval)) == false { return }
                        // Each probe within the interval (at most 5 s): one hanging upstream must not
                        // hold the probes of the others.
                        let answer = try? await client.health(timeout: min(interval, .seconds(5)))
                        let health = answer.flatMap(UpstreamPool.health(from:))
                        pool.probed(index, health)
                        if let board { try? await board.health(name, health == nil ? nil : answer, keep: interval * 3) }
                    }
                }
            }
            try? await Task.sleep(for: interval)
        }
    }
}

@main
struct GatewayMain {
    static func main() {
        WorkerRuntime.runAndExit { environment in
            let configuration = try Gateway.configuration(environment)
            return Gateway.makeRuntime(configuration, board: try Gateway.board(environment))
        }
    }
}

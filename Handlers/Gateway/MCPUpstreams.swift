import CurlHTTP
import GatewayCore
import Logging
import ServiceLifecycle
import Synchronization
import WorkerJSON
import WorkerRuntime

/// The tools of every upstream with an `mcp_url`, as the gateway's own MCP tools: each named
/// `<upstream>_<tool>`, its call forwarded to that upstream (`GatewayHandler`), its result passed
/// back as the upstream gave it. The list is read at start, every `interval`, and soon after a
/// call names a tool no longer listed or fails; an upstream that cannot be read keeps its last
/// list (and says so in the log), so one outage does not hide every tool.
final class MCPUpstreams: ToolSource {
    /// The job input key of a forwarded call (`WorkerTool.forwardKey`).
    static let forwardKey = "mcp_call"

    let clients: [Int: MCPUpstreamClient]
    let upstreams: [GatewayConfiguration.Upstream]
    let serverName: String
    let instructions: String?
    /// The gateway's own tool (a job routed by tiers), listed first.
    let own: [WorkerTool]
    let interval: Duration
    let logger: Logger
    private struct State {
        var lists: [Int: [WorkerTool]] = [:]
        var catalog: ToolCatalog
        var refreshAsked = false
    }
    private let state: Mutex<State>

    /// `instance`: this gateway's id, sent in `X-Gateway-Chain` with every request upstream.
    init(configuration: GatewayConfiguration, http: CurlHTTPClient, own: [WorkerTool], serverName: String, instructions: String?, logger: Logger,
         interval: Duration = .seconds(60), instance: String? = nil) {
        var clients: [Int: MCPUpstreamClient] = [:]
        let headers = instance.map { [GatewayChain(nil).forwarded(by: $0)] } ?? []
        for (index, upstream) in configuration.upstreams.enumerated() {
            if let url = upstream.mcpURL {
                clients[index] = MCPUpstreamClient(url: url, apiKey: upstream.apiKey, http: http, timeout: upstream.timeout, headers: headers)
            }
        }
        self.clients = clients
        self.upstreams = configuration.upstreams
        self.serverName = serverName
        self.instructions = instructions
        self.own = own
        self.interval = interval
        self.logger = logger
        state = Mutex(State(catalog: ToolCatalog(serverName: serverName, instructions: instructions, tools: own)))
    }

    var catalog: ToolCatalog { state.withLock { $0.catalog } }

    /// The first read of every list, for at most 5 s (stdio clients list the tools once).
    func prepare() async {
        guard !clients.isEmpty else { return }
        _ = try? await GatewayHandler.within(.now + .seconds(5)) { await self.refresh() }
    }

    func refreshSoon() {
        state.withLock { $0.refreshAsked = true }
    }

    /// Reads every upstream's list once; false when one could not be read.
    @discardableResult
    func refresh() async -> Bool {
        var complete = true
        await withTaskGroup(of: (Int, [WorkerTool]?).self) { group in
            for (index, client) in clients {
                group.addTask {
                    do {
                        return (index, try await client.listTools().compactMap { self.tool($0, upstream: index) })
                    } catch {
                        self.logger.warning("Gateway: the tools of \(self.upstreams[index].name) could not be listed (\(error)); its last list stays")
                        return (index, nil)
                    }
                }
            }
            for await (index, tools) in group {
                guard let tools else {
                    complete = false
                    continue
                }
                state.withLock { $0.lists[index] = tools }
            }
        }
        let catalog = state.withLock { state -> ToolCatalog in
            let tools = own + state.lists.keys.sorted().flatMap { state.lists[$0] ?? [] }
            state.catalog = ToolCatalog(serverName: serverName, instructions: instructions, tools: tools)
            return state.catalog
        }
        for reason in catalog.skipped { logger.warning("Gateway: an upstream tool is not offered: \(reason)") }
        return complete
    }

    /// An upstream's tool as the gateway lists it.
    func tool(_ listed: JSONValue, upstream index: Int) -> WorkerTool? {
        guard let name = listed["name"]?.stringValue, !name.isEmpty else { return nil }
        let upstream = upstreams[index]
        var schema = listed["inputSchema"] ?? ["type": "object"]
        if schema["type"]?.stringValue != "object" { schema = ["type": "object"] }
        var tool = WorkerTool(
            name: "\(upstream.name)_\(name)", title: listed["title"]?.stringValue,
            description: listed["description"]?.stringValue ?? "\(name) on \(upstream.name)",
            action: "\(upstream.name)/\(name)", inputSchema: schema,
            outputSchema: listed["outputSchema"].flatMap { $0["type"]?.stringValue == "object" ? $0 : nil },
            annotations: .init(
                readOnly: listed["annotations"]?["readOnlyHint"]?.boolValue, destructive: listed["annotations"]?["destructiveHint"]?.boolValue,
                idempotent: listed["annotations"]?["idempotentHint"]?.boolValue, openWorld: listed["annotations"]?["openWorldHint"]?.boolValue))
        tool.forwardKey = Self.forwardKey
        return tool
    }

    /// The upstream and tool a forwarded call's `name` (`<upstream>/<tool>`) names.
    func target(_ name: String) -> (index: Int, client: MCPUpstreamClient, tool: String)? {
        guard let slash = name.firstIndex(of: "/") else { return nil }
        let upstream = String(name[..<slash])
        guard let index = upstreams.firstIndex(where: { $0.name == upstream }), let client = clients[index] else { return nil }
        return (index, client, String(name[name.index(after: slash)...]))
    }
}

/// Keeps the upstreams' tool lists fresh: at start, every interval (every few seconds while one
/// could not be read: an upstream that starts after the gateway is listed soon), and within a
/// second of a call asking for it.
struct MCPToolRefresh: Service {
    let tools: MCPUpstreams
    static let retry: Duration = .seconds(3)

    func run() async throws {
        guard !tools.clients.isEmpty else { return }
        await cancelWhenGracefulShutdown { await keepFresh() }
    }

    private func keepFresh() async {
        var last = ContinuousClock.now
        var complete = await tools.refresh()
        while !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(500))
            let due = complete ? tools.interval : Self.retry
            if tools.takeRefreshAsked() || ContinuousClock.now - last >= due {
                last = .now
                complete = await tools.refresh()
            }
        }
    }
}

extension MCPUpstreams {
    func takeRefreshAsked() -> Bool {
        state.withLock { state in
            defer { state.refreshAsked = false }
            return state.refreshAsked
        }
    }
}

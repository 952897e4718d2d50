/// Per-handler runtime settings chosen in code.
public struct WorkerOptions: Sendable {
    public var concurrency: JobConcurrency
    /// Send all streamed chunks again, as a list, in the final result.
    public var returnAggregateStream: Bool
    /// Ask the platform for a fresh worker after every job, and exit once in-flight jobs finish.
    public var refreshWorker: Bool
    /// The endpoint's execution timeout, for `JobContext.deadline` when a job carries no
    /// `policy.executionTimeout` of its own (queue workers are not told the endpoint's setting).
    public var executionTimeout: Duration?
    /// The worker's name for agents (MCP's server name); nil uses the executable's file name.
    public var name: String?
    /// What the worker is for, in a sentence or two, for an agent's system prompt (MCP's
    /// `instructions`).
    public var instructions: String?
    /// The actions agents may call as tools (over MCP); none gives one tool named after the
    /// worker that takes its job input.
    public var tools: [WorkerTool]
    /// Tools that change while the worker runs, in place of `tools` (the gateway's).
    package var toolSource: (any ToolSource)?
    /// Jobs submitted at `/v2/{id}/run` (and `runsync`) carry `{id}` as `endpointPath` (the
    /// gateway's upstream addressing); other handlers' jobs are left as sent.
    package var recordsEndpointPath = false
    /// Request headers recorded in each job the endpoint server makes of a request (`/run`,
    /// `/runsync`, `/openai/v1/*`): header name → the job's top-level field (as `endpointPath`),
    /// for a handler that must see one (the gateway's loop guard). Others' jobs carry none.
    package var recordedHeaders: [String: String] = [:]
    /// Refuses a request by its headers before anything else reads it (the endpoint server's
    /// guard, every route but the health check): given a lookup of the request's headers by name,
    /// a status and a message, or nil to let it through. The gateway refuses a request that has
    /// come back to it (`X-Gateway-Chain`).
    package var refusesRequest: (@Sendable (_ header: (String) -> String?) -> (status: Int, message: String)?)?
    /// Flags the handler's own code reads (`--model-dir`): the runtime leaves them, and the bare
    /// words after them, for it. Any other flag the runtime does not know stops the worker with an
    /// error naming it.
    public var handlerFlags: [String]

    public init(
        concurrency: JobConcurrency = .environment, returnAggregateStream: Bool = false, refreshWorker: Bool = false,
        executionTimeout: Duration? = nil, name: String? = nil, instructions: String? = nil, tools: [WorkerTool] = [],
        handlerFlags: [String] = []
    ) {
        self.concurrency = concurrency
        self.returnAggregateStream = returnAggregateStream
        self.refreshWorker = refreshWorker
        self.executionTimeout = executionTimeout
        self.name = name
        self.instructions = instructions
        self.tools = tools
        self.handlerFlags = handlerFlags
    }
}

/// How many jobs a worker runs at once.
public enum JobConcurrency: Sendable {
    /// `WORKER_CONCURRENCY` (default 1).
    case environment
    case fixed(Int)
    /// Re-evaluated while polling, given the current value (runpod's `concurrency_modifier`).
    case dynamic(@Sendable (Int) -> Int)

    package var isDynamic: Bool {
        if case .dynamic = self { return true }
        return false
    }

    package func evaluate(current: Int, environment: Int) -> Int {
        switch self {
        case .environment: return max(1, environment)
        case .fixed(let count): return max(1, count)
        case .dynamic(let modifier): return max(1, modifier(current))
        }
    }
}

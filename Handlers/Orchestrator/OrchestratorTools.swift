import WorkerJSON
import WorkerRuntime

/// The orchestrator's actions as tools for agents (MCP).
enum OrchestratorTools {
    static let instructions =
        "Qualifies and enriches B2B sales leads as durable workflows: process_lead runs one lead (by its id, once), "
        + "batch_process many, get_lead shows a lead's stored outcome and every stage's output, get_batch a batch's report "
        + "rebuilt from its leads (by the batch_process job's id)."

    private static let lead: JSONValue = [
        "type": "object", "required": ["id"],
        "properties": [
            "id": ["type": ["string", "integer"], "description": "The lead's id: processing the same id again returns its stored outcome."],
            "name": ["type": "string"], "email": ["type": "string"], "title": ["type": "string"], "company": ["type": "string"],
            "company_size": ["type": ["integer", "string"], "description": "Employees, or a range such as 201-1000."],
            "industry": ["type": "string"], "budget": ["type": "number"], "timeline": ["type": "string"],
            "signals": ["type": "array", "items": ["type": "string"], "description": "What they did: demo_request, pricing_page, trial_signup, …"],
            "unsubscribed": ["type": "boolean"],
        ],
    ]

    /// What a tool that runs (and spends on) other endpoints needs under MCP authorization
    /// (docs/mcp.md); reading leads needs only `MCP_AUTH_SCOPES`. `MCP_TOOL_SCOPES` replaces it.
    static let runScopes = ["leads:write"]

    static let all: [WorkerTool] = [
        WorkerTool(
            name: "process_lead", title: "Qualify a lead",
            description: "Scores a lead (0 to 1, with reasons), rejects it below the threshold, else enriches it, stores it in memory "
                + "and plans a growth strategy. Durable: a lead already processed returns its stored outcome.",
            action: "process_lead",
            inputSchema: ["type": "object", "properties": ["lead_data": lead], "required": ["lead_data"]],
            annotations: .init(readOnly: false, destructive: false, idempotent: true, openWorld: true), scopes: runScopes),
        WorkerTool(
            name: "batch_process", title: "Qualify many leads",
            description: "Processes leads concurrently (concurrency 1 to 64) and reports each one's status and score. Durable: "
                + "every lead is recorded before any starts, and a batch whose worker stops is finished by another (get_batch).",
            action: "batch_process",
            inputSchema: [
                "type": "object", "required": ["leads"],
                "properties": [
                    "leads": ["type": "array", "items": lead, "minItems": 1, "maxItems": 10_000],
                    "concurrency": ["type": "integer", "minimum": 1, "maximum": 64],
                ],
            ],
            annotations: .init(readOnly: false, destructive: false, idempotent: true, openWorld: true), scopes: runScopes),
        WorkerTool(
            name: "get_lead", title: "Show a lead",
            description: "A lead's workflow: status, score, outcome or error, and each finished stage's output.",
            action: "get_lead",
            inputSchema: ["type": "object", "properties": ["lead_id": ["type": ["string", "integer"]]], "required": ["lead_id"]],
            annotations: .init(readOnly: true, destructive: false, idempotent: true, openWorld: false)),
        WorkerTool(
            name: "get_batch", title: "Show a batch",
            description: "A batch's report rebuilt from its leads' workflows: counts (pending while leads still run) and each "
                + "lead's status, score or error, in input order. batch_id is the batch_process job's id.",
            action: "get_batch",
            inputSchema: ["type": "object", "properties": ["batch_id": ["type": "string"]], "required": ["batch_id"]],
            annotations: .init(readOnly: true, destructive: false, idempotent: true, openWorld: false)),
    ]
}

import EndpointAPI
import EndpointClient
import Logging
import PostgresClient
import WorkerJSON

/// Workflows in PostgreSQL, in the manner of DBOS: a row per lead (status, input, outcome, owner,
/// lease, code version, attempts) and a row per finished stage (its output). One round trip
/// saves a stage and renews the lease, fenced by the owner (so a stage saved again, because its
/// row was damaged or the answer to the first save was lost, replaces its row). A database
/// outage (a restart, a dropped connection) is waited out with backoff until the deadline: every
/// write is safe to repeat, so a statement whose answer was lost is simply sent again.
struct PostgresWorkflowStore: WorkflowStore {
    let client: PostgresClient
    /// How long an outage is waited out.
    let outageBudget: Duration
    let logger: Logger
    /// How long start-up waits for a database it cannot reach (`DATABASE_STARTUP_TIMEOUT`); a
    /// refused connection (password, role, database) fails start-up at once.
    var startupBudget: Duration = .seconds(60)
    var description: String { "PostgreSQL \(client.configuration.server)" }

    /// Shaped for the hot path, a save per stage: the saves change only unindexed columns of the
    /// workflow row (lease, times), so PostgreSQL updates it in place (HOT, with room left in each
    /// page by the fill factor) instead of adding index entries; steps carry no foreign key, whose
    /// check would lock the workflow row on every save: they are only ever inserted from the
    /// owned workflow row, in the same statement.
    static let migrations = [
        PostgresMigration(
            version: 1, name: "orchestrator workflows and steps",
            sql: """
                CREATE TABLE orchestrator_workflows (
                    lead_id text PRIMARY KEY,
                    status text NOT NULL CHECK (status IN ('pending', 'qualified', 'rejected', 'failed')),
                    input jsonb NOT NULL,
                    output jsonb,
                    error jsonb,
                    code_version text NOT NULL,
                    owner text,
                    lease_until timestamptz,
                    attempts integer NOT NULL DEFAULT 1,
                    created_at timestamptz NOT NULL DEFAULT now(),
                    updated_at timestamptz NOT NULL DEFAULT now()
                ) WITH (fillfactor = 70);
                CREATE INDEX orchestrator_workflows_pending ON orchestrator_workflows (code_version) WHERE status = 'pending';
                CREATE TABLE orchestrator_steps (
                    lead_id text NOT NULL,
                    stage text NOT NULL,
                    output jsonb NOT NULL,
                    code_version text NOT NULL,
                    duration_ms double precision NOT NULL,
                    completed_at timestamptz NOT NULL DEFAULT now(),
                    PRIMARY KEY (lead_id, stage));
                """),
        // A batch is recorded when it is accepted, with its leads (each a pending workflow,
        // written in the same statement): `get_batch` rebuilds its report from them.
        PostgresMigration(
            version: 2, name: "orchestrator batches",
            sql: """
                CREATE TABLE orchestrator_batches (
                    batch_id text PRIMARY KEY,
                    entries jsonb NOT NULL,
                    created_at timestamptz NOT NULL DEFAULT now());
                """),
    ]

    /// How a step saved again (its row was damaged, or the answer to the first save was lost)
    /// replaces its row; the statements that insert steps end with it.
    static let replacingStep = """
        ON CONFLICT (lead_id, stage) DO UPDATE SET output = EXCLUDED.output, code_version = EXCLUDED.code_version,
            duration_ms = EXCLUDED.duration_ms, completed_at = now()
        """

    func prepare() async throws {
        do {
            _ = try await surviving("migrations", within: startupBudget) { try await client.migrate(Self.migrations) }
        } catch let error as PostgresError where Self.isOutage(error) {
            throw OrchestratorError.startup(
                "PostgreSQL \(client.configuration.server) could not be reached within \(startupBudget) "
                    + "(DATABASE_STARTUP_TIMEOUT); the last error: \(error)")
        }
    }

    func claim(_ leadID: String, input: JSONValue, owner: String, lease: Duration, version: String) async throws -> WorkflowClaim {
        let claimed = try await surviving("claim") {
            try await client.query(
                """
                INSERT INTO orchestrator_workflows AS w (lead_id, status, input, code_version, owner, lease_until)
                VALUES ($1, 'pending', $2, $3, $4, now() + $5::bigint * interval '1 millisecond')
                ON CONFLICT (lead_id) DO UPDATE SET owner = EXCLUDED.owner, lease_until = EXCLUDED.lease_until, status = 'pending',
                    error = NULL, attempts = w.attempts + 1, updated_at = now()
                WHERE w.status = 'failed' OR (w.status = 'pending' AND (w.owner IS NULL OR w.owner = EXCLUDED.owner OR w.lease_until < now()))
                RETURNING w.input, w.code_version, w.attempts, (xmax = 0) AS created,
                    (extract(epoch FROM w.created_at) * 1000)::bigint AS created_ms
                """, [leadID, input, version, owner, lease.wholeMilliseconds])
        }
        if let row = claimed.first {
            var record = WorkflowRecord(
                leadID: leadID, status: .pending, input: try row.decode("input"), codeVersion: try row.decode("code_version"), owner: owner,
                attempts: try row.decode("attempts"), createdAt: try row.decode("created_ms"))
            // A new row, or one queued by a batch and started now for the first time (attempts 1:
            // steps are saved only by a worker that started it), has no steps to read.
            if try !row.decode("created", as: Bool.self), record.attempts > 1 { record.steps = try await steps(of: leadID) }
            return .claimed(record)
        }
        guard let record = try await workflow(leadID) else {
            // Deleted between the two statements: start it again.
            return try await claim(leadID, input: input, owner: owner, lease: lease, version: version)
        }
        if record.status.isFinal { return .finished(record) }
        return .busy(owner: record.owner ?? "unknown")
    }

    func record(_ leadID: String, step: WorkflowStep, owner: String, lease: Duration) async throws {
        let rows = try await surviving("record \(step.stage.rawValue)") {
            try await client.query(
                """
                WITH owned AS (
                    UPDATE orchestrator_workflows SET lease_until = now() + $6::bigint * interval '1 millisecond', updated_at = now()
                    WHERE lead_id = $1 AND owner = $2 AND status = 'pending' RETURNING lead_id),
                saved AS (
                    INSERT INTO orchestrator_steps (lead_id, stage, output, code_version, duration_ms)
                    SELECT lead_id, $3::text, $4::jsonb, $5::text, $7::float8 FROM owned
                    \(Self.replacingStep)
                    RETURNING 1)
                SELECT (SELECT count(*) FROM owned) AS owned
                """, [leadID, owner, step.stage.rawValue, step.output, step.codeVersion, lease.wholeMilliseconds, step.durationMs])
        }
        guard try rows.first?.decode("owned", as: Int.self) == 1 else { throw OrchestratorError.leaseLost(leadID) }
    }

    func renew(_ leadID: String, owner: String, lease: Duration) async throws -> Bool {
        let rows = try await surviving("renew") {
            try await client.query(
                """
                UPDATE orchestrator_workflows SET lease_until = now() + $3::bigint * interval '1 millisecond'
                WHERE lead_id = $1 AND owner = $2 AND status = 'pending'
                """, [leadID, owner, lease.wholeMilliseconds])
        }
        return rows.affectedRows == 1
    }

    func finish(_ leadID: String, status: WorkflowStatus, output: JSONValue?, error: JSONValue?, owner: String, step: WorkflowStep?) async throws {
        let rows = try await surviving("finish") {
            try await client.query(
                """
                WITH done AS (
                    UPDATE orchestrator_workflows SET status = $3, output = $4, error = $5, owner = NULL, lease_until = NULL, updated_at = now()
                    WHERE lead_id = $1 AND owner = $2 AND status = 'pending' RETURNING lead_id),
                saved AS (
                    INSERT INTO orchestrator_steps (lead_id, stage, output, code_version, duration_ms)
                    SELECT lead_id, $6::text, $7::jsonb, $8::text, $9::float8 FROM done WHERE $6::text IS NOT NULL
                    \(Self.replacingStep)
                    RETURNING 1)
                SELECT (SELECT count(*) FROM done) AS owned
                """,
                [leadID, owner, status.rawValue, output, error, step?.stage.rawValue, step?.output, step?.codeVersion, step?.durationMs])
        }
        if try rows.first?.decode("owned", as: Int.self) == 1 { return }
        // A repeat after a lost answer finds its own outcome already there.
        if let record = try await workflow(leadID), record.status == status, record.output == output { return }
        throw OrchestratorError.leaseLost(leadID)
    }

    func release(_ leadID: String, owner: String) async throws {
        _ = try await client.query(
            "UPDATE orchestrator_workflows SET owner = NULL, lease_until = now() WHERE lead_id = $1 AND owner = $2 AND status = 'pending'",
            [leadID, owner])
    }

    func claimAbandoned(owner: String, lease: Duration, version: String, limit: Int) async throws -> [WorkflowRecord] {
        let rows = try await surviving("recovery") {
            try await client.query(
                """
                UPDATE orchestrator_workflows w SET owner = $1, lease_until = now() + $2::bigint * interval '1 millisecond',
                    attempts = w.attempts + 1, updated_at = now()
                FROM (SELECT lead_id FROM orchestrator_workflows
                      WHERE status = 'pending' AND code_version = $3 AND (lease_until IS NULL OR lease_until < now())
                      ORDER BY updated_at LIMIT $4 FOR UPDATE SKIP LOCKED) abandoned
                WHERE w.lead_id = abandoned.lead_id
                RETURNING w.lead_id, w.input, w.attempts, (extract(epoch FROM w.created_at) * 1000)::bigint AS created_ms
                """, [owner, lease.wholeMilliseconds, version, limit])
        }
        var records: [WorkflowRecord] = []
        for row in rows {
            let leadID: String = try row.decode("lead_id")
            var record = WorkflowRecord(
                leadID: leadID, status: .pending, input: try row.decode("input"), codeVersion: version, owner: owner,
                attempts: try row.decode("attempts"), createdAt: try row.decode("created_ms"))
            record.steps = try await steps(of: leadID)
            records.append(record)
        }
        return records
    }

    func pendingOfOtherVersions(than version: String) async throws -> Int {
        let rows = try await client.query(
            "SELECT count(*) AS n FROM orchestrator_workflows WHERE status = 'pending' AND code_version <> $1", [version])
        return try rows.first?.decode("n") ?? 0
    }

    func workflow(_ leadID: String) async throws -> WorkflowRecord? {
        let rows = try await surviving("read") {
            try await client.query(
                """
                SELECT status, input, output, error, code_version, owner, attempts,
                    (extract(epoch FROM created_at) * 1000)::bigint AS created_ms, (extract(epoch FROM updated_at) * 1000)::bigint AS updated_ms
                FROM orchestrator_workflows WHERE lead_id = $1
                """, [leadID])
        }
        guard let row = rows.first else { return nil }
        let rawStatus: String = try row.decode("status")
        guard let status = WorkflowStatus(rawValue: rawStatus) else {
            throw OrchestratorError.input("lead \(leadID) has an unknown status '\(rawStatus)' in the database")
        }
        var record = WorkflowRecord(
            leadID: leadID, status: status, input: try row.decode("input"), output: try row.decode("output"), error: try row.decode("error"),
            codeVersion: try row.decode("code_version"), owner: try row.decode("owner"), attempts: try row.decode("attempts"),
            createdAt: try row.decode("created_ms"), updatedAt: try row.decode("updated_ms"))
        record.steps = try await steps(of: leadID)
        return record
    }

    private func steps(of leadID: String) async throws -> [WorkflowStep] {
        let rows = try await surviving("read steps") {
            try await client.query(
                """
                SELECT stage, output, code_version, duration_ms, (extract(epoch FROM completed_at) * 1000)::bigint AS completed_ms
                FROM orchestrator_steps WHERE lead_id = $1
                """, [leadID])
        }
        var steps: [WorkflowStep] = []
        for row in rows {
            // A stage this version does not know (written by a newer one) is left out, not fatal.
            guard let stage = LeadStage(rawValue: try row.decode("stage")) else { continue }
            steps.append(WorkflowStep(
                stage: stage, output: try row.decode("output"), codeVersion: try row.decode("code_version"),
                durationMs: try row.decode("duration_ms"), completedAt: try row.decode("completed_ms")))
        }
        return steps
    }

    /// Runs `body`, waiting out an unreachable database (jittered, up to `budget`, by default
    /// `outageBudget`). A refused connection is not an outage: it is thrown at once.
    func surviving<T>(_ what: String, within budget: Duration? = nil, _ body: () async throws -> T) async throws -> T {
        let schedule = PollSchedule(initial: .milliseconds(100), factor: 2, cap: .seconds(2), jitter: 0.3)
        let until = ContinuousClock.now + (budget ?? outageBudget)
        var attempt = 0
        while true {
            do {
                return try await body()
            } catch let error as PostgresError where Self.isOutage(error) {
                let pause = schedule.delay(attempt: attempt)
                attempt += 1
                guard ContinuousClock.now + pause < until else { throw error }
                if attempt == 1 { logger.warning("PostgreSQL is unavailable (\(what)); waiting for it: \(error)") }
                try await Task.sleep(for: pause)
            }
        }
    }

    static func isOutage(_ error: PostgresError) -> Bool {
        // 57P01-57P03: the server is shutting down or starting; 08xxx: connection exceptions.
        error.isUnavailable || (error.sqlState.map { $0.hasPrefix("57P") || $0.hasPrefix("08") } ?? false)
    }
}

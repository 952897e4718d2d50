import EndpointAPI
import PostgresClient
import WorkerJSON

/// Batches in PostgreSQL: accepted in one statement (the batch row and a pending workflow per
/// lead), held by the batch's worker through its leases, read back with their leads' states.
extension PostgresWorkflowStore {
    func enqueue(_ batch: BatchRecord, leads: [Lead], owner: String, lease: Duration, version: String) async throws {
        // One row per lead id: the statement may not insert and update the same row twice.
        var seen: Set<String> = []
        let queued = JSONValue.array(leads.compactMap { lead -> JSONValue? in
            guard seen.insert(lead.id).inserted else { return nil }
            return JSONValue.object(["id": .string(lead.id), "input": lead.data])
        })
        // Safe to send again (an answer lost in an outage): the batch row is kept, and the leads
        // are by then pending or ended, which this leaves alone. Rows are taken in id order, so
        // two batches sharing leads, recorded at once, cannot deadlock.
        _ = try await surviving("enqueue batch") {
            try await client.query(
                """
                WITH batch AS (
                    INSERT INTO orchestrator_batches (batch_id, entries) VALUES ($1::text, $2::jsonb)
                    ON CONFLICT (batch_id) DO NOTHING RETURNING batch_id),
                queued AS (
                    INSERT INTO orchestrator_workflows AS w (lead_id, status, input, code_version, owner, lease_until, attempts)
                    SELECT q.item ->> 'id', 'pending', q.item -> 'input', $4::text, $5::text,
                        now() + $6::bigint * interval '1 millisecond', 0
                    FROM jsonb_array_elements($3::jsonb) AS q(item)
                    ORDER BY q.item ->> 'id'
                    ON CONFLICT (lead_id) DO UPDATE SET status = 'pending', error = NULL, owner = EXCLUDED.owner,
                        lease_until = EXCLUDED.lease_until, updated_at = now()
                    WHERE w.status = 'failed'
                    RETURNING w.lead_id)
                SELECT (SELECT count(*) FROM batch) AS recorded, (SELECT count(*) FROM queued) AS queued
                """, [batch.batchID, batch.entriesJSON, queued, version, owner, lease.wholeMilliseconds])
        }
    }

    func renewAll(_ leadIDs: [String], owner: String, lease: Duration) async throws {
        guard !leadIDs.isEmpty else { return }
        let ids = JSONValue.array(leadIDs.map { .string($0) })
        _ = try await surviving("renew batch") {
            // Rows locked by another statement are skipped, never waited for (two batches sharing
            // leads cannot deadlock): a lead being written by its own run is renewed by that
            // write, and any other gets the next renewal, a third of the lease later.
            try await client.query(
                """
                UPDATE orchestrator_workflows w SET lease_until = now() + $3::bigint * interval '1 millisecond'
                FROM (SELECT lead_id FROM orchestrator_workflows
                      WHERE lead_id IN (SELECT jsonb_array_elements_text($1::jsonb)) AND owner = $2::text AND status = 'pending'
                      FOR UPDATE SKIP LOCKED) held
                WHERE w.lead_id = held.lead_id
                """, [ids, owner, lease.wholeMilliseconds])
        }
    }

    func releaseAll(_ leadIDs: [String], owner: String) async throws {
        guard !leadIDs.isEmpty else { return }
        let ids = JSONValue.array(leadIDs.map { .string($0) })
        _ = try await client.query(
            """
            UPDATE orchestrator_workflows SET owner = NULL, lease_until = now()
            WHERE lead_id IN (SELECT jsonb_array_elements_text($1::jsonb)) AND owner = $2::text AND status = 'pending'
            """, [ids, owner])
    }

    func batch(_ batchID: String) async throws -> BatchRecord? {
        let found = try await surviving("read batch") {
            try await client.query(
                """
                SELECT entries, (extract(epoch FROM created_at) * 1000)::bigint AS created_ms
                FROM orchestrator_batches WHERE batch_id = $1::text
                """, [batchID])
        }
        guard let row = found.first else { return nil }
        var batch = BatchRecord(
            batchID: batchID, entries: BatchRecord.entries(from: try row.decode("entries", as: JSONValue.self)),
            createdAt: try row.decode("created_ms"))
        let ids = JSONValue.array(batch.leadIDs.map { .string($0) })
        // The score of a lead still running is its saved qualification's.
        let rows = try await surviving("read batch leads") {
            try await client.query(
                """
                SELECT w.lead_id, w.status, w.error, w.attempts, COALESCE(w.output -> 'score', s.output -> 'score') AS score
                FROM orchestrator_workflows w
                LEFT JOIN orchestrator_steps s ON s.lead_id = w.lead_id AND s.stage = 'qualification'
                WHERE w.lead_id IN (SELECT jsonb_array_elements_text($1::jsonb))
                """, [ids])
        }
        for row in rows {
            guard let status = WorkflowStatus(rawValue: try row.decode("status", as: String.self)) else { continue }
            let leadID = try row.decode("lead_id", as: String.self)
            batch.leads[leadID] = BatchLeadState(
                status: status, score: try row.decode("score", as: JSONValue?.self), error: try row.decode("error", as: JSONValue?.self),
                attempts: try row.decode("attempts", as: Int.self))
        }
        return batch
    }
}

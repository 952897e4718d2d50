#if canImport(Glibc)
import Glibc
#endif
import WorkerJSON

/// The workflow store without a database: the same rules as PostgreSQL's, for one process, lost
/// when it ends (the worker says so at start-up).
actor InMemoryWorkflowStore: WorkflowStore {
    private struct Entry {
        var record: WorkflowRecord
        var leaseUntil: ContinuousClock.Instant?
    }

    private var entries: [String: Entry] = [:]
    private var batches: [String: BatchRecord] = [:]
    nonisolated var description: String { "memory (lost when the worker stops; set DATABASE_URL to keep workflows)" }

    func prepare() async throws {}

    func claim(_ leadID: String, input: JSONValue, owner: String, lease: Duration, version: String) async throws -> WorkflowClaim {
        let now = Self.nowMs()
        guard var entry = entries[leadID] else {
            let record = WorkflowRecord(
                leadID: leadID, status: .pending, input: input, codeVersion: version, owner: owner, attempts: 1, createdAt: now, updatedAt: now)
            entries[leadID] = Entry(record: record, leaseUntil: .now + lease)
            return .claimed(record)
        }
        switch entry.record.status {
        case .qualified, .rejected:
            return .finished(entry.record)
        case .pending where entry.record.owner != nil && entry.record.owner != owner && (entry.leaseUntil.map { $0 > .now } ?? false):
            return .busy(owner: entry.record.owner!)
        case .pending, .failed:
            entry.record.status = .pending
            entry.record.error = nil
            entry.record.owner = owner
            entry.record.attempts += 1
            entry.record.updatedAt = now
            entry.leaseUntil = .now + lease
            entries[leadID] = entry
            return .claimed(entry.record)
        }
    }

    func record(_ leadID: String, step: WorkflowStep, owner: String, lease: Duration) async throws {
        guard var entry = owned(leadID, by: owner) else { throw OrchestratorError.leaseLost(leadID) }
        // A stage saved again (its row was damaged, or the answer to the first save was lost)
        // replaces the row, as in PostgreSQL.
        var step = step
        step.completedAt = Self.nowMs()
        entry.record.steps.removeAll { $0.stage == step.stage }
        entry.record.steps.append(step)
        entry.leaseUntil = .now + lease
        entry.record.updatedAt = Self.nowMs()
        entries[leadID] = entry
    }

    func renew(_ leadID: String, owner: String, lease: Duration) async throws -> Bool {
        guard var entry = owned(leadID, by: owner) else { return false }
        entry.leaseUntil = .now + lease
        entries[leadID] = entry
        return true
    }

    func finish(_ leadID: String, status: WorkflowStatus, output: JSONValue?, error: JSONValue?, owner: String, step: WorkflowStep?) async throws {
        if let step { try await record(leadID, step: step, owner: owner, lease: .zero) }
        guard var entry = owned(leadID, by: owner) else { throw OrchestratorError.leaseLost(leadID) }
        entry.record.status = status
        entry.record.output = output
        entry.record.error = error
        entry.record.owner = nil
        entry.record.updatedAt = Self.nowMs()
        entry.leaseUntil = nil
        entries[leadID] = entry
    }

    func release(_ leadID: String, owner: String) async throws {
        guard var entry = owned(leadID, by: owner) else { return }
        entry.record.owner = nil
        entry.leaseUntil = nil
        entries[leadID] = entry
    }

    func claimAbandoned(owner: String, lease: Duration, version: String, limit: Int) async throws -> [WorkflowRecord] {
        let now = ContinuousClock.now
        let abandoned = entries.values
            .filter { $0.record.status == .pending && $0.record.codeVersion == version && ($0.leaseUntil.map { $0 < now } ?? true) }
            .sorted { $0.record.updatedAt < $1.record.updatedAt }
            .prefix(limit)
        var claimed: [WorkflowRecord] = []
        for var entry in abandoned {
            entry.record.owner = owner
            entry.record.attempts += 1
            entry.record.updatedAt = Self.nowMs()
            entry.leaseUntil = now + lease
            entries[entry.record.leadID] = entry
            claimed.append(entry.record)
        }
        return claimed
    }

    func pendingOfOtherVersions(than version: String) async throws -> Int {
        entries.values.filter { $0.record.status == .pending && $0.record.codeVersion != version }.count
    }

    func workflow(_ leadID: String) async throws -> WorkflowRecord? { entries[leadID]?.record }

    func enqueue(_ batch: BatchRecord, leads: [Lead], owner: String, lease: Duration, version: String) async throws {
        let now = Self.nowMs()
        if batches[batch.batchID] == nil {
            var stored = batch
            stored.createdAt = now
            stored.leads = [:]
            batches[batch.batchID] = stored
        }
        for lead in leads {
            guard var entry = entries[lead.id] else {
                let record = WorkflowRecord(
                    leadID: lead.id, status: .pending, input: lead.data, codeVersion: version, owner: owner, attempts: 0, createdAt: now,
                    updatedAt: now)
                entries[lead.id] = Entry(record: record, leaseUntil: .now + lease)
                continue
            }
            // A failed lead is queued again (the batch retries it); pending and ended ones stay.
            guard entry.record.status == .failed else { continue }
            entry.record.status = .pending
            entry.record.error = nil
            entry.record.owner = owner
            entry.record.updatedAt = now
            entry.leaseUntil = .now + lease
            entries[lead.id] = entry
        }
    }

    func renewAll(_ leadIDs: [String], owner: String, lease: Duration) async throws {
        for leadID in leadIDs {
            guard var entry = owned(leadID, by: owner) else { continue }
            entry.leaseUntil = .now + lease
            entries[leadID] = entry
        }
    }

    func releaseAll(_ leadIDs: [String], owner: String) async throws {
        for leadID in leadIDs { try await release(leadID, owner: owner) }
    }

    func batch(_ batchID: String) async throws -> BatchRecord? {
        guard var batch = batches[batchID] else { return nil }
        for leadID in batch.leadIDs {
            if let record = entries[leadID]?.record { batch.leads[leadID] = BatchLeadState(record) }
        }
        return batch
    }

    private func owned(_ leadID: String, by owner: String) -> Entry? {
        guard let entry = entries[leadID], entry.record.status == .pending, entry.record.owner == owner else { return nil }
        return entry
    }

    static func nowMs() -> Int64 {
        var time = timespec()
        clock_gettime(CLOCK_REALTIME, &time)
        return Int64(time.tv_sec) * 1000 + Int64(time.tv_nsec) / 1_000_000
    }
}

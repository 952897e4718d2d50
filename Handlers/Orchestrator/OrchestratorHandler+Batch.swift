import Logging
import WorkerJSON
import WorkerRuntime

/// `batch_process`: a batch accepted is a batch finished. Before any lead starts, the batch (its
/// id is the job's) and every one of its leads are recorded as pending in one write, as DBOS's
/// queues do; the leads not started yet stay leased to this worker while the batch runs. If the
/// worker dies, nothing re-delivers the job in the HTTP modes, but the leases run out and recovery
/// (any worker's) finishes the leads; `get_batch` rebuilds the report from them.
extension OrchestratorHandler {
    /// Every lead of the batch through its own workflow, `concurrency` at a time; each reported
    /// on its own (a failed or malformed lead does not stop the others). Throws only when the
    /// batch could not be recorded (then nothing ran).
    func batch(
        _ leads: [Result<Lead, OrchestratorError>], concurrency: Int, deadline: ContinuousClock.Instant, context: JobContext
    ) async throws -> JSONValue {
        let started = ContinuousClock.now
        let batchID = context.id
        let queued = try await enqueue(leads, batchID: batchID)
        let holder = hold(queued, logger: context.logger)
        var reports = [JSONValue](repeating: .null, count: leads.count)
        let begun = await withTaskGroup(of: (Int, JSONValue).self, returning: Int.self) { group in
            var next = 0
            func add() {
                let index = next
                next += 1
                group.addTask { (index, await self.report(leads[index], deadline: deadline, logger: context.logger)) }
            }
            for _ in 0..<min(concurrency, leads.count) { add() }
            var finished = 0
            let every = max(1, leads.count / 20)
            while let (index, report) = await group.next() {
                reports[index] = report
                finished += 1
                if finished % every == 0 && finished < leads.count {
                    context.progress([
                        "batch_id": .string(batchID), "processed": .integer(Int64(finished)), "total": .integer(Int64(leads.count)),
                    ])
                }
                // A stopped job starts nothing more: the rest is handed back below.
                if next < leads.count && !Task.isCancelled { add() }
            }
            return next
        }
        holder.cancel()
        if begun < leads.count {
            await handBack(leads[begun...], reports: &reports, from: begun)
        }
        var counts: [String: Int64] = [:]
        for report in reports { counts[report["status"]?.stringValue ?? "failed", default: 0] += 1 }
        let elapsed = ContinuousClock.now - started
        return [
            "batch_id": .string(batchID), "total": .integer(Int64(leads.count)), "qualified": .integer(counts["qualified"] ?? 0),
            "rejected": .integer(counts["rejected"] ?? 0), "failed": .integer(counts["failed"] ?? 0), "invalid": .integer(counts["invalid"] ?? 0),
            "pending": .integer(counts["pending"] ?? 0), "duration_ms": .number(elapsed.fractionalMilliseconds),
            "leads": .array(reports),
        ]
    }

    /// Records the batch and its distinct leads (pending, leased to this worker); returns their ids.
    private func enqueue(_ leads: [Result<Lead, OrchestratorError>], batchID: String) async throws -> [String] {
        var entries: [BatchRecord.Entry] = []
        var distinct: [Lead] = []
        var seen: Set<String> = []
        entries.reserveCapacity(leads.count)
        for entry in leads {
            switch entry {
            case .success(let lead):
                entries.append(.lead(lead.id))
                if seen.insert(lead.id).inserted { distinct.append(lead) }
            case .failure(let error):
                entries.append(.invalid(error.description))
            }
        }
        try await store.enqueue(
            BatchRecord(batchID: batchID, entries: entries), leads: distinct, owner: workflow.owner, lease: configuration.lease,
            version: configuration.codeVersion)
        return distinct.map(\.id)
    }

    /// Renews this worker's leases on the batch's leads every third of the lease, until
    /// cancelled: leads waiting for their turn are not taken for abandoned. (Leads running have
    /// their own heartbeat; ended ones are left alone by the store.)
    private func hold(_ leadIDs: [String], logger: Logger) -> Task<Void, Never> {
        let store = self.store
        let owner = workflow.owner
        let lease = configuration.lease
        return Task {
            while true {
                do {
                    try await Task.sleep(for: lease / 3)
                } catch {
                    return
                }
                do {
                    try await store.renewAll(leadIDs, owner: owner, lease: lease)
                } catch {
                    if Task.isCancelled { return }
                    logger.warning("Renewing the leases of a batch's waiting leads failed (trying again in \(lease / 3)): \(error)")
                }
            }
        }
    }

    /// The job stopped before these leads started: they are handed back at once (recovery,
    /// here after a restart or on another worker, finishes them) and reported as pending.
    private func handBack(_ rest: ArraySlice<Result<Lead, OrchestratorError>>, reports: inout [JSONValue], from start: Int) async {
        var ids: [String] = []
        var seen: Set<String> = []
        for (offset, entry) in rest.enumerated() {
            switch entry {
            case .success(let lead):
                reports[start + offset] = ["lead_id": .string(lead.id), "status": "pending"]
                // A lead another job of this worker is running keeps its lease.
                if seen.insert(lead.id).inserted && !inFlight.contains(lead.id) { ids.append(lead.id) }
            case .failure(let error):
                reports[start + offset] = ["status": "invalid", "error": .string(error.description)]
            }
        }
        let store = self.store
        let owner = workflow.owner
        let waiting = ids
        // From a task of its own: this one is cancelled.
        await Task { _ = try? await store.releaseAll(waiting, owner: owner) }.value
    }

    func report(_ entry: Result<Lead, OrchestratorError>, deadline: ContinuousClock.Instant, logger: Logger) async -> JSONValue {
        let lead: Lead
        switch entry {
        case .failure(let error): return ["status": "invalid", "error": .string(error.description)]
        case .success(let parsed): lead = parsed
        }
        do {
            let result = try await process(lead, deadline: deadline, logger: logger)
            var fields: [String: JSONValue] = ["lead_id": .string(lead.id)]
            for key in ["status", "score", "duration_ms", "reused", "resumed_after", "attempts"] { fields[key] = result[key] }
            return .object(fields)
        } catch let error as OrchestratorError {
            var fields: [String: JSONValue] = ["lead_id": .string(lead.id), "status": "failed", "error": .string(error.reason)]
            if let stage = error.stage { fields["stage"] = .string(stage.rawValue) }
            return .object(fields)
        } catch {
            return ["lead_id": .string(lead.id), "status": "failed", "error": .string("\(error)")]
        }
    }
}

import WorkerJSON

/// A batch as accepted (`batch_process`; its id is the job's), with its leads' workflows as they
/// are now: `get_batch` rebuilds the batch's report from them, whichever workers ran the leads
/// and whether or not the job that accepted the batch lived to report.
struct BatchRecord: Sendable, Equatable {
    enum Entry: Sendable, Equatable {
        /// A lead, by id: its workflow holds the rest.
        case lead(String)
        /// A malformed lead, and why: reported, never run.
        case invalid(String)
    }

    var batchID: String
    /// In input order; a lead given twice appears twice (and runs once).
    var entries: [Entry]
    /// Unix time in milliseconds (set by the store).
    var createdAt: Int64 = 0
    /// The workflows of its leads, by id (filled when the batch is read back).
    var leads: [String: BatchLeadState] = [:]

    /// The distinct lead ids, in input order.
    var leadIDs: [String] {
        var seen: Set<String> = []
        return entries.compactMap { entry -> String? in
            guard case .lead(let id) = entry, seen.insert(id).inserted else { return nil }
            return id
        }
    }

    /// The entries as stored: `{"lead_id": …}` or `{"invalid": …}` each.
    var entriesJSON: JSONValue {
        .array(entries.map { entry -> JSONValue in
            switch entry {
            case .lead(let id): return ["lead_id": .string(id)]
            case .invalid(let reason): return ["invalid": .string(reason)]
            }
        })
    }

    /// The entries from their stored form (an entry of neither shape is left out).
    static func entries(from json: JSONValue) -> [Entry] {
        (json.arrayValue ?? []).compactMap { entry -> Entry? in
            if let id = entry["lead_id"]?.stringValue { return .lead(id) }
            if let reason = entry["invalid"]?.stringValue { return .invalid(reason) }
            return nil
        }
    }

    /// As `get_batch` answers: the batch's counts (`pending` counts leads not ended yet;
    /// `finished` once none is) and one report per entry in input order, shaped as the
    /// `batch_process` job reports them.
    var json: JSONValue {
        var counts: [String: Int64] = ["qualified": 0, "rejected": 0, "failed": 0, "invalid": 0, "pending": 0]
        let reports: [JSONValue] = entries.map { entry -> JSONValue in
            let report: JSONValue
            switch entry {
            case .invalid(let reason):
                report = ["status": "invalid", "error": .string(reason)]
            case .lead(let id):
                if let state = leads[id] {
                    report = state.report(id)
                } else {
                    // Not in the store (deleted by hand): said so, not counted as pending forever.
                    report = ["lead_id": .string(id), "status": "missing"]
                }
            }
            counts[report["status"]?.stringValue ?? "missing", default: 0] += 1
            return report
        }
        var fields: [String: JSONValue] = [
            "found": true, "batch_id": .string(batchID), "created_at_ms": .integer(createdAt),
            "total": .integer(Int64(entries.count)), "finished": .bool(counts["pending"] == 0), "leads": .array(reports),
        ]
        for (status, count) in counts { fields[status] = .integer(count) }
        return .object(fields)
    }
}

/// Where one lead of a batch stands.
struct BatchLeadState: Sendable, Equatable {
    var status: WorkflowStatus
    /// The outcome's score, or the saved qualification's while the lead is still running.
    var score: JSONValue?
    /// `{stage, reason}` for a failed lead.
    var error: JSONValue?
    var attempts: Int

    init(status: WorkflowStatus, score: JSONValue?, error: JSONValue?, attempts: Int) {
        self.status = status
        self.score = score
        self.error = error
        self.attempts = attempts
    }

    init(_ record: WorkflowRecord) {
        self.init(
            status: record.status, score: record.output?["score"] ?? record.step(.qualification)?.output["score"], error: record.error,
            attempts: record.attempts)
    }

    func report(_ leadID: String) -> JSONValue {
        var fields: [String: JSONValue] = ["lead_id": .string(leadID), "status": .string(status.rawValue), "attempts": .integer(Int64(attempts))]
        if let score, score != .null { fields["score"] = score }
        if status == .failed {
            fields["stage"] = error?["stage"]
            fields["error"] = error?["reason"]
        }
        return .object(fields)
    }
}

/// The rules for finished jobs' results: which list keeps each (/run and /runsync results have
/// their own retention period and count cap), for how long, and which are forgotten first past a
/// cap or the byte budget (`RETAINED_RESULTS_MB`). Counts only: the lists themselves are the
/// store's, which says when asked how old a list's oldest result is.
struct JobRetention: Equatable, Sendable {
    enum List: Equatable, Sendable {
        case run, sync
    }

    /// What becomes of a job's result once final.
    enum Decision: Equatable, Sendable {
        /// Forget the job now: its only reader, the listener that submitted it, has the final report.
        case forget
        /// Append it to `List`; it goes when its retention passes, or earlier when `nextEviction`
        /// names that list while it is the oldest there.
        case keep(List)
    }

    /// How long a finished result stays queryable, per list.
    let runPeriod: Duration
    let syncPeriod: Duration
    /// The most results each list keeps (`maxRetainedResults`, `maxRetainedSyncResults`).
    let maxRuns: Int
    let maxSyncs: Int
    /// The most bytes, inputs and results, all kept jobs may hold.
    let budget: Int

    private(set) var runs = 0
    private(set) var syncs = 0
    private(set) var bytes = 0

    init(runPeriod: Duration, syncPeriod: Duration, maxRuns: Int, maxSyncs: Int, budget: Int) {
        self.runPeriod = runPeriod
        self.syncPeriod = syncPeriod
        self.maxRuns = maxRuns
        self.maxSyncs = maxSyncs
        self.budget = budget
    }

    /// A job just became final.
    mutating func keep(_ job: JobLifecycle) -> Decision {
        guard job.retained else { return .forget }
        bytes += job.retainedBytes
        if job.isSync { syncs += 1 } else { runs += 1 }
        return .keep(job.isSync ? .sync : .run)
    }

    /// The oldest result of the job's list has been removed.
    mutating func forget(_ job: JobLifecycle) {
        bytes -= job.retainedBytes
        if job.isSync { syncs -= 1 } else { runs -= 1 }
    }

    /// After `newest` joined its list: the list whose oldest result goes next, or nil once within
    /// that list's cap and the byte budget. `newest` is kept whatever its size, so its caller sees
    /// it; it goes only once a later job needs the room. `oldestFinish` tells when a list's oldest
    /// result finished, asked only past the budget.
    func nextEviction(after newest: JobLifecycle, oldestFinish: (List) -> JobTime?) -> List? {
        let overCap = newest.isSync ? syncs > maxSyncs : runs > maxRuns
        if overCap { return newest.isSync ? .sync : .run }
        guard bytes > budget, runs + syncs > 1 else { return nil }
        // The older of the two lists' heads goes. `newest` is the newest kept: when it heads its
        // list it is alone there, and the other list's head goes.
        if runs == 0 || (!newest.isSync && runs == 1) { return .sync }
        guard syncs > 0, let sync = oldestFinish(.sync), let run = oldestFinish(.run) else { return .run }
        return sync < run ? .sync : .run
    }

    /// Whether `oldest`'s retention has passed (a job is only ever in its own list).
    func hasPassed(_ oldest: JobLifecycle, now: JobTime) -> Bool {
        (oldest.finishedAt ?? now) + (oldest.isSync ? syncPeriod : runPeriod) <= now
    }
}

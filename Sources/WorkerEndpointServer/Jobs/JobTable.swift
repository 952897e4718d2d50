/// The store's jobs by id. Keys carry their hash, computed once per job: Swift's dictionary
/// re-hashes the entries it shifts when one is deleted, and hashing a 44-byte id each time made
/// forgetting an expired result the most expensive step of a /runsync.
struct JobTable {
    struct Key: Hashable {
        let id: String
        let hash: Int

        init(_ id: String) {
            self.id = id
            self.hash = id.hashValue
        }

        func hash(into hasher: inout Hasher) { hasher.combine(hash) }
        static func == (a: Key, b: Key) -> Bool { a.hash == b.hash && a.id == b.id }
    }

    private var storage: [Key: StoredJob] = [:]

    var count: Int { storage.count }

    /// The job under a client's id (hashed here, once).
    subscript(id id: String) -> StoredJob? {
        get { storage[Key(id)] }
    }

    /// Puts `job` under its id, replacing what was there (`/retry` queues a new object).
    mutating func insert(_ job: StoredJob) {
        storage[job.tableKey] = job
    }

    /// Removes `job`, but only if it is still the one under its id.
    mutating func remove(_ job: StoredJob) {
        guard let index = storage.index(forKey: job.tableKey), storage.values[index] === job else { return }
        storage.remove(at: index)
    }
}

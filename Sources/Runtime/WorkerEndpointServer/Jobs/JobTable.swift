/// The store's jobs by id. Keys carry their hash, computed once per job: Swift's dictionary
/// re-hashes the entries it shifts when one is deleted, and hashing a 44-byte id each time made
/// forgetting an expired result the most expensive step of a /runsync.
struct JobTable {
    struct Key: Hashable {
        let id: String
        let hash: Int

        init(_ id: String) {
            self.id = id
            self.hash = Self.digest(id)
        }

        func hash(into hasher: inout Hasher) { hasher.combine(hash) }
        /// What the dictionary asks for when placing a key: the digest itself, instead of running
        /// the standard (SipHash) hasher over it again. The digest is keyed per process, and the
        /// seed still varies the placement per table.
        func _rawHashValue(seed: Int) -> Int { hash ^ seed }
        static func == (a: Key, b: Key) -> Bool { a.hash == b.hash && a.id == b.id }

        private static let secret = UInt64.random(in: .min ... .max)

        /// A keyed multiply-xorshift digest of the id's UTF-8, 8 bytes a step. Not SipHash (which
        /// was ~1 % of a /runsync for one id): the ids put in the table are made by the store
        /// (random-looking, or a retried job's own), so no client can choose keys that collide;
        /// a client's id is only looked up. They are ASCII, so equal ids have equal bytes.
        static func digest(_ id: String) -> Int {
            var id = id
            return id.withUTF8 { bytes in
                let raw = UnsafeRawBufferPointer(bytes)
                var state = secret ^ (UInt64(bytes.count) &* 0x9E37_79B9_7F4A_7C15)
                var offset = 0
                while offset + 8 <= raw.count {
                    state = JobIDs.mix(state ^ raw.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
                    offset += 8
                }
                var tail: UInt64 = 0
                var shift: UInt64 = 0
                while offset < raw.count {
                    tail |= UInt64(raw[offset]) << shift
                    shift += 8
                    offset += 1
                }
                return Int(truncatingIfNeeded: JobIDs.mix(state ^ tail))
            }
        }
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

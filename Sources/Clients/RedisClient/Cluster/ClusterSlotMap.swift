/// Which master serves each of the 16384 slots, as `CLUSTER SLOTS` told it, patched by the
/// `MOVED` redirections heard since.
package struct ClusterSlotMap: Sendable, Equatable {
    /// The masters, in the order the reply named them.
    package private(set) var masters: [ClusterNodeAddress] = []
    /// For each slot, its master's index in `masters`; -1 when no node serves it. 32 KB, shared
    /// (copy on write) by every call that read it.
    private var owners = [Int16](repeating: -1, count: HashSlot.count)

    package init() {}

    /// Reads a `CLUSTER SLOTS` reply: an array of `[first slot, last slot, master, replicas...]`,
    /// each node `[host, port, id, ...]`. The master's host stands in as `answeredBy`'s when it
    /// is missing, empty or `?` (Redis 7's ways of saying "the address you reached me by").
    package init(slotsReply reply: RedisValue, answeredBy node: ClusterNodeAddress) throws(RedisError) {
        func malformed() -> RedisError { .unexpectedReply(node.description, "CLUSTER SLOTS", reply) }
        guard case .array(let ranges) = reply else { throw malformed() }
        for range in ranges {
            guard case .array(let fields) = range, fields.count >= 3, let first = fields[0].integer, let last = fields[1].integer,
                0 <= first, first <= last, last < Int64(HashSlot.count),
                case .array(let master) = fields[2], master.count >= 2, let port = master[1].integer, (1...65535).contains(port)
            else { throw malformed() }
            let host = master[0].string.flatMap { $0.isEmpty || $0 == "?" ? nil : $0 } ?? node.host
            let owner = index(of: ClusterNodeAddress(host: host, port: Int(port)))
            for slot in Int(first)...Int(last) { owners[slot] = owner }
        }
    }

    /// The master serving `slot`; nil when none does (the cluster lost it, or is being set up).
    package func master(of slot: Int) -> ClusterNodeAddress? {
        let index = owners[slot]
        return index < 0 ? nil : masters[Int(index)]
    }

    /// Records a `MOVED`: `slot` is served by `node` now.
    package mutating func assign(_ slot: Int, to node: ClusterNodeAddress) {
        owners[slot] = index(of: node)
    }

    /// Whether any slot is served at all (a node not yet joined to a cluster answers with none).
    package var isEmpty: Bool { masters.isEmpty }

    private mutating func index(of node: ClusterNodeAddress) -> Int16 {
        if let index = masters.firstIndex(of: node) { return Int16(index) }
        masters.append(node)
        return Int16(masters.count - 1)
    }
}

/// A least-recently-used table bounded in bytes (each entry's key plus the size its setter gives),
/// with an expiry per entry; a pure value, kept under a lock by `NearCache`. Entries are linked
/// through indices into one array, so every operation is O(1) and nothing is allocated per hit.
package struct LRUTable<Value> {
    private struct Node {
        var key: String
        var value: Value?
        var size: Int
        var expires: ContinuousClock.Instant
        var older: Int
        var newer: Int
        var bytes: Int { key.utf8.count + size }
    }

    private var nodes: [Node] = []
    private var free: [Int] = []
    private var index: [String: Int] = [:]
    /// Most and least recently used; -1 when empty.
    private var newest = -1
    private var oldest = -1
    private(set) package var bytes = 0
    package let capacity: Int

    package init(capacity: Int) {
        self.capacity = capacity
    }

    package var count: Int { index.count }

    /// The value, unless missing or expired (an expired entry is dropped); a hit becomes newest.
    package mutating func get(_ key: String, now: ContinuousClock.Instant) -> Value? {
        guard let slot = index[key] else { return nil }
        guard nodes[slot].expires > now else {
            remove(slot)
            return nil
        }
        unlink(slot)
        linkNewest(slot)
        return nodes[slot].value
    }

    /// Stores `value` (counted as `size` bytes) until `expires`; older entries go until the table
    /// fits. A value larger than the whole table is not stored.
    package mutating func set(_ key: String, _ value: Value, size: Int, expires: ContinuousClock.Instant) {
        if let slot = index[key] { remove(slot) }
        let total = key.utf8.count + size
        guard total <= capacity else { return }
        while bytes + total > capacity, oldest >= 0 { remove(oldest) }
        let node = Node(key: key, value: value, size: size, expires: expires, older: -1, newer: -1)
        let slot: Int
        if let reused = free.popLast() {
            nodes[reused] = node
            slot = reused
        } else {
            nodes.append(node)
            slot = nodes.count - 1
        }
        index[key] = slot
        bytes += total
        linkNewest(slot)
    }

    private mutating func remove(_ slot: Int) {
        unlink(slot)
        bytes -= nodes[slot].bytes
        index[nodes[slot].key] = nil
        nodes[slot].value = nil
        nodes[slot].key = ""
        free.append(slot)
    }

    private mutating func unlink(_ slot: Int) {
        let (older, newer) = (nodes[slot].older, nodes[slot].newer)
        if older >= 0 { nodes[older].newer = newer } else { oldest = newer }
        if newer >= 0 { nodes[newer].older = older } else { newest = older }
        nodes[slot].older = -1
        nodes[slot].newer = -1
    }

    private mutating func linkNewest(_ slot: Int) {
        nodes[slot].older = newest
        nodes[slot].newer = -1
        if newest >= 0 { nodes[newest].newer = slot }
        newest = slot
        if oldest < 0 { oldest = slot }
    }
}

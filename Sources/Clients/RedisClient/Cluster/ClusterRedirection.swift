/// A cluster node's answer that a key's slot is served elsewhere:
/// - `-MOVED <slot> <host>:<port>`: the slot lives there now; the slot map is out of date;
/// - `-ASK <slot> <host>:<port>`: the slot is being migrated there and this key has gone ahead;
///   send `ASKING` then the command there, once, and keep the map as it is.
package struct ClusterRedirection: Sendable, Equatable {
    package enum Kind: Sendable, Equatable {
        case moved
        case ask
    }

    package let kind: Kind
    package let slot: Int
    package let node: ClusterNodeAddress

    /// Nil for any other error reply. `from` is the node that answered (it stands in for a
    /// host the reply leaves out).
    package init?(errorReply message: String, from node: ClusterNodeAddress) {
        let kind: Kind
        if message.hasPrefix("MOVED ") {
            kind = .moved
        } else if message.hasPrefix("ASK ") {
            kind = .ask
        } else {
            return nil
        }
        let parts = message.split(separator: " ", omittingEmptySubsequences: true)
        guard parts.count == 3, let slot = Int(parts[1]), (0..<HashSlot.count).contains(slot),
            let target = ClusterNodeAddress(parts[2], fallbackHost: node.host)
        else { return nil }
        self.kind = kind
        self.slot = slot
        self.node = target
    }

    /// Whether `reply` is a redirection (checked on every reply of a cluster call, so without
    /// parsing it).
    package static func isRedirection(_ reply: RedisValue) -> Bool {
        guard case .error(let message) = reply else { return false }
        return message.hasPrefix("MOVED ") || message.hasPrefix("ASK ")
    }
}

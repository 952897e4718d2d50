/// Sending a call to the right node and following the cluster's redirections.
extension RedisClusterClient {
    /// Runs `commands` as one exchange with the master serving `slot` (any master when nil), then
    /// sends on the commands answered with a redirection, to the node it names:
    /// - `MOVED`: the slot lives there now; the map is patched (later calls go straight there)
    ///   and read again in the background;
    /// - `ASK`: during a migration the key went ahead; each redirected command is sent after an
    ///   `ASKING` (which holds for one command) in one exchange, and the map is left as it is.
    /// Only redirected commands are sent again (the others ran), at most `maxRedirects` times.
    /// A node no connection could be made to (nothing was sent) has the map read again, once,
    /// and the call goes to the slot's new master if another took over; otherwise it fails naming
    /// the node. Returns the replies and the node that answered last.
    func run(_ commands: [RedisCommand], slot: Int?) async throws -> (replies: [RedisValue], node: ClusterNodeAddress) {
        func name() -> String { commands.count == 1 ? commands[0].commandName : "pipeline" }
        var node = try await target(for: slot, name)
        var replies: [RedisValue] = []
        /// Positions in `commands` of what the next exchange sends after the first (all of them).
        var pending: [Int] = []
        var first = true
        var asking = false
        var redirects = 0
        var triedAnotherNode = false
        while true {
            let answers: [RedisValue]
            do {
                answers = try await exchange(first ? commands : pending.map { commands[$0] }, on: node, asking: asking, name)
            } catch let error as RedisError where error.isConnectFailure {
                guard !triedAnotherNode, let next = try? await nodeAfterFailure(of: node, slot: slot) else {
                    throw RedisError.nodeUnreachable(node.description, name(), slot: slot, error.reason)
                }
                triedAnotherNode = true
                node = next
                asking = false
                continue
            } catch let error as RedisError where error.isUnavailable {
                // The command may have run: not sent again, but the next call should find a
                // failover.
                refreshSoon(avoiding: node)
                throw error
            }
            if first {
                // The common case: no redirection, nothing more to do.
                guard answers.contains(where: ClusterRedirection.isRedirection) else { return (answers, node) }
                replies = answers
                pending = Array(commands.indices)
                first = false
            } else {
                for (position, answer) in zip(pending, answers) { replies[position] = answer }
            }
            var redirected: [Int] = []
            var redirection: ClusterRedirection?
            var last = ""
            for position in pending {
                guard case .error(let message) = replies[position], let found = ClusterRedirection(errorReply: message, from: node) else {
                    continue
                }
                redirected.append(position)
                last = message
                if found.kind == .moved { recordMoved(found.slot, to: found.node) }
                // One slot's commands are redirected to one node; an ASK among them means a
                // migration under way, and ASKING does no harm to the others.
                if redirection == nil || found.kind == .ask { redirection = found }
            }
            guard let redirection else { return (replies, node) }
            redirects += 1
            guard redirects <= Self.maxRedirects else {
                throw RedisError.tooManyRedirects(node.description, name(), limit: Self.maxRedirects, last: last)
            }
            if redirection.kind == .moved { refreshSoon() }
            node = redirection.node
            asking = redirection.kind == .ask
            pending = redirected
        }
    }

    /// One exchange with `node`; with `asking`, each command follows an `ASKING` and only the
    /// commands' replies are returned.
    private func exchange(_ commands: [RedisCommand], on node: ClusterNodeAddress, asking: Bool, _ name: () -> String) async throws -> [RedisValue] {
        let redis = try client(for: node, name)
        guard asking else { return try await redis.pipeline(commands) }
        let replies = try await redis.pipeline(commands.flatMap { command -> [RedisCommand] in [["ASKING"], command] })
        return stride(from: 1, to: replies.count, by: 2).map { replies[$0] }
    }

    /// The master serving `slot`, or any master when nil; the map is read first if there is none.
    private func target(for slot: Int?, _ name: () -> String) async throws -> ClusterNodeAddress {
        let map = try await slotMap()
        guard let slot else { return anyMaster(map) }
        guard let node = map.master(of: slot) else {
            refreshSoon()
            throw RedisError.slotUncovered(clusterName, name(), slot: slot)
        }
        return node
    }

    /// Where a call goes after `failed` could not be reached: the master the map, read again
    /// (asking `failed` last), names for `slot` (for a keyless call, another master); nil when
    /// that is `failed` still.
    private func nodeAfterFailure(of failed: ClusterNodeAddress, slot: Int?) async throws -> ClusterNodeAddress? {
        let map = try await refreshedMap(required: false, avoiding: failed)
        let next: ClusterNodeAddress?
        if let slot {
            next = map.master(of: slot)
        } else {
            next = map.masters.first { $0 != failed }
        }
        guard let next, next != failed else { return nil }
        return next
    }

    /// The one slot `keys` hash to, nil when there are none. Keys of different slots are refused
    /// here, before anything is sent: one exchange goes to one node.
    func commonSlot(of keys: [RedisArgument], _ name: () -> String) throws(RedisError) -> Int? {
        guard let first = keys.first else { return nil }
        let slot = HashSlot.of(first.bytes)
        for key in keys.dropFirst() where HashSlot.of(key.bytes) != slot {
            var named: [(key: String, slot: Int)] = []
            for key in keys {
                let keySlot = HashSlot.of(key.bytes)
                guard !named.contains(where: { $0.slot == keySlot }) else { continue }
                let text = String(decoding: key.bytes.prefix(64), as: UTF8.self) + (key.bytes.count > 64 ? "..." : "")
                named.append((text, keySlot))
                if named.count == 4 { break }
            }
            throw .crossSlot(clusterName, name(), keys: named)
        }
        return slot
    }
}

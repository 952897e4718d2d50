import Synchronization

/// Learning and refreshing the slot map: one read at a time, shared by every caller that wants
/// it, and none sooner than 100 ms after the last (`ClusterRefreshState`).
extension RedisClusterClient {
    /// The map there is; read first when there is none yet.
    func slotMap() async throws -> ClusterSlotMap {
        if let map = state.withLock({ $0.map }) { return map }
        return try await refreshedMap(required: true)
    }

    /// A map read now, or by the read under way; the map there is when the last read ended less
    /// than 100 ms ago, unless `required`. `avoiding` (a node that just failed) is asked last.
    func refreshedMap(required: Bool, avoiding: ClusterNodeAddress? = nil) async throws -> ClusterSlotMap {
        let decision = state.withLock { state in
            state.refresh.request(at: .now, required: required || state.map == nil) { startRead(avoiding: avoiding) }
        }
        switch decision {
        case .join(let read), .started(let read):
            return try await read.value
        case .skip:
            if let map = state.withLock({ $0.map }) { return map }
            return try await refreshedMap(required: true, avoiding: avoiding)
        }
    }

    /// Has the map read again in the background, if none was read in the last 100 ms: after a
    /// `MOVED` (the one slot is patched at once; others may have moved with it) or a failure
    /// that may mean a failover.
    func refreshSoon(avoiding: ClusterNodeAddress? = nil) {
        _ = state.withLock { state in
            state.refresh.request(at: .now, required: false) { startRead(avoiding: avoiding) }
        }
    }

    /// Records a `MOVED`: later calls for `slot` go straight to `node`.
    func recordMoved(_ slot: Int, to node: ClusterNodeAddress) {
        state.withLock { _ = $0.map?.assign(slot, to: node) }
    }

    /// A read of the map in a task of its own, so that callers who stop waiting (cancelled) do
    /// not stop it for the others; it stores the map and ends the read in `state`.
    private func startRead(avoiding: ClusterNodeAddress?) -> Task<ClusterSlotMap, any Error> {
        Task { [self] in
            do {
                let map = try await readSlotMap(avoiding: avoiding)
                state.withLock { state in
                    state.map = map
                    state.refresh.ended(at: .now)
                }
                return map
            } catch {
                state.withLock { $0.refresh.ended(at: .now) }
                throw error
            }
        }
    }

    /// Asks the masters the map names, then the seed, then `avoiding`, for `CLUSTER SLOTS`, until
    /// one answers with slots.
    private func readSlotMap(avoiding: ClusterNodeAddress?) async throws -> ClusterSlotMap {
        var candidates: [ClusterNodeAddress] = []
        for node in state.withLock({ $0.map?.masters ?? [] }) + [seed] where node != avoiding && !candidates.contains(node) {
            candidates.append(node)
        }
        if let avoiding { candidates.append(avoiding) }
        var failures: [String] = []
        for node in candidates {
            let redis = try client(for: node) { "CLUSTER SLOTS" }
            do {
                let reply = try await redis.send(["CLUSTER", "SLOTS"])
                let map = try ClusterSlotMap(slotsReply: reply, answeredBy: node)
                guard !map.isEmpty else {
                    failures.append("\(node) serves no slots (a cluster not set up yet: redis-cli --cluster create)")
                    continue
                }
                return map
            } catch let error as RedisError where error.isServerError && error.reason.contains("cluster support disabled") {
                throw RedisError.notACluster(node.description, error.reason)
            } catch let error as RedisError where error.isUnavailable {
                failures.append("\(node): \(error.reason)")
            }
        }
        throw RedisError.clusterUnreachable(clusterName, failures)
    }
}

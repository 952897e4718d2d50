import Dispatch
import MemoryStore
import Synchronization

/// The namespaces open in this process, at most `limit` of them. A request holds a lease on the
/// namespace it uses; a namespace nobody leases may be closed (least recently used first) to make
/// room, releasing its index and files, and is opened again on its next use. Opening (reading and
/// mapping a snapshot, replaying a log) runs off the cooperative pool and outside the cache's lock,
/// so a large namespace being opened never holds up requests to the others.
final class NamespaceCache: Sendable {
    private enum Slot {
        case opening([CheckedContinuation<Void, Never>])
        case open(MemoryNamespace, leases: Int, lastUse: UInt64)
    }

    private struct State {
        var slots: [String: Slot] = [:]
        var clock: UInt64 = 0
        var openCount: Int {
            slots.values.reduce(0) { count, slot in if case .open = slot { return count + 1 } else { return count } }
        }
    }

    /// Opens (or creates) a namespace: (directory, dimension, embedder, create) → the namespace and
    /// whether it was created, nil when there is none and `create` is false. Blocking; run off the pool.
    typealias Opener = @Sendable (String, Int?, String, Bool) throws -> (MemoryNamespace, Bool)?

    private let state = Mutex(State())
    private let opener: Opener
    let limit: Int

    init(limit: Int, opener: @escaping Opener = NamespaceCache.openFromDisk) {
        self.limit = max(1, limit)
        self.opener = opener
    }

    var openNamespaces: Int { state.withLock { $0.openCount } }

    /// Runs `body` with the namespace in `directory`, opening it if needed; nil (and `body` not
    /// run) when it does not exist and `create` is false. The recorded dimension and embedder must
    /// match (a clear error otherwise). A namespace this call created and `body` failed to write
    /// anything into is closed and its directory removed: a failed first store leaves nothing.
    func withNamespace<T: Sendable>(
        directory: String, dimension: Int?, embedder: String, create: Bool,
        _ body: (MemoryNamespace) async throws -> T
    ) async throws -> T? {
        guard let (namespace, created) = try await lease(directory: directory, dimension: dimension, embedder: embedder, create: create)
        else { return nil }
        do {
            if let dimension, dimension != namespace.dimension {
                throw MemoryInputError(
                    "the namespace holds \(namespace.dimension)-dimensional vectors (\(namespace.embedder)); this one has \(dimension)")
            }
            let result = try await body(namespace)
            release(directory)
            return result
        } catch {
            if created, namespace.count == 0 { discard(directory) } else { release(directory) }
            throw error
        }
    }

    /// Closes and removes an empty namespace, unless another request holds it too. Requests for it
    /// meanwhile wait, as for one being opened, then open it afresh.
    private func discard(_ directory: String) {
        let removing = state.withLock { state -> MemoryNamespace? in
            guard case .open(let namespace, let leases, let lastUse) = state.slots[directory] else { return nil }
            guard leases == 1 else {
                state.slots[directory] = .open(namespace, leases: leases - 1, lastUse: lastUse)
                return nil
            }
            state.slots[directory] = .opening([])
            return namespace
        }
        guard let removing else { return }
        if removing.count == 0 { MemoryNamespace.removeIfEmpty(directory) }
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            defer { state.slots[directory] = nil }
            guard case .opening(let waiters) = state.slots[directory] else { return [] }
            return waiters
        }
        for waiter in waiters { waiter.resume() }
    }

    private func lease(
        directory: String, dimension: Int?, embedder: String, create: Bool
    ) async throws -> (MemoryNamespace, Bool)? {
        while true {
            enum Step { case use(MemoryNamespace), wait, open }
            let step = state.withLock { state -> Step in
                state.clock += 1
                switch state.slots[directory] {
                case .open(let namespace, let leases, _):
                    state.slots[directory] = .open(namespace, leases: leases + 1, lastUse: state.clock)
                    return .use(namespace)
                case .opening:
                    return .wait
                case nil:
                    state.slots[directory] = .opening([])
                    return .open
                }
            }
            switch step {
            case .use(let namespace):
                return (namespace, false)
            case .wait:
                await waitForOpening(directory)
            case .open:
                let opened: Result<(MemoryNamespace, Bool)?, any Error>
                do {
                    try makeRoom()
                    opened = .success(try await open(directory: directory, dimension: dimension, embedder: embedder, create: create))
                } catch {
                    opened = .failure(error)
                }
                let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
                    guard case .opening(let waiters) = state.slots[directory] else { return [] }
                    if case .success(let (namespace, _)?) = opened {
                        state.clock += 1
                        state.slots[directory] = .open(namespace, leases: 1, lastUse: state.clock)
                    } else {
                        state.slots[directory] = nil
                    }
                    return waiters
                }
                for waiter in waiters { waiter.resume() }
                return try opened.get()
            }
        }
    }

    private func waitForOpening(_ directory: String) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let resumeNow = state.withLock { state -> Bool in
                guard case .opening(var waiters) = state.slots[directory] else { return true }
                waiters.append(continuation)
                state.slots[directory] = .opening(waiters)
                return false
            }
            if resumeNow { continuation.resume() }
        }
    }

    private func release(_ directory: String) {
        state.withLock { state in
            guard case .open(let namespace, let leases, let lastUse) = state.slots[directory] else { return }
            state.slots[directory] = .open(namespace, leases: max(0, leases - 1), lastUse: lastUse)
        }
    }

    /// Closes idle namespaces, least recently used first, until one more fits under the limit.
    private func makeRoom() throws(MemoryInputError) {
        // Dropped after the lock: closing unmaps the index and closes files.
        var closing: [MemoryNamespace] = []
        defer { closing.removeAll() }
        try state.withLock { state throws(MemoryInputError) in
            // Slots being opened count too: each will hold a namespace.
            var used = state.slots.count
            guard used > limit else { return }
            let idle = state.slots.compactMap { entry -> (String, UInt64)? in
                if case .open(_, 0, let lastUse) = entry.value { return (entry.key, lastUse) }
                return nil
            }.sorted { $0.1 < $1.1 }
            for (directory, _) in idle where used > limit {
                if case .open(let namespace, _, _) = state.slots.removeValue(forKey: directory) { closing.append(namespace) }
                used -= 1
            }
            guard used <= limit else {
                throw MemoryInputError(
                    "more than \(limit) namespaces are in use at once (MEMORY_MAX_OPEN_NAMESPACES); retry when fewer are busy, "
                        + "or raise the limit")
            }
        }
    }

    /// Opens on a thread outside the cooperative pool: replaying a large log must not take a pool thread.
    private func open(directory: String, dimension: Int?, embedder: String, create: Bool) async throws -> (MemoryNamespace, Bool)? {
        let opener = self.opener
        return try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global().async {
                continuation.resume(with: Result { try opener(directory, dimension, embedder, create) })
            }
        }
    }

    @Sendable static func openFromDisk(directory: String, dimension: Int?, embedder: String, create: Bool) throws -> (MemoryNamespace, Bool)? {
        let layout = try MemoryNamespace.layout(of: directory)
        guard layout != nil || create else { return nil }
        if let layout, layout.embedder != embedder {
            throw MemoryInputError(
                "the namespace was built with the embedder \(layout.embedder); this worker uses \(embedder). "
                    + "Use another namespace, or configure the same embedder")
        }
        guard let size = layout?.dimension ?? dimension else { return nil }
        do {
            return (try MemoryNamespace(directory: directory, dimension: size, embedder: embedder), layout == nil)
        } catch {
            // Creating failed part way (a full disk): leave no empty directory behind.
            if layout == nil { MemoryNamespace.removeIfEmpty(directory) }
            throw error
        }
    }
}

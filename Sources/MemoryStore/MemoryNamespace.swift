import Dispatch
import Synchronization
import VectorIndex

#if canImport(Glibc)
import Glibc
#endif

/// One namespace of the memory store: its vectors (a VectorIndex), texts and metadata, kept
/// durable in a directory by a snapshot plus a write-ahead log.
///
/// A write is acknowledged only once its log record is fsynced; writes arriving together share one
/// fsync (group commit). Processes sharing the directory (workers on one network volume) serialize
/// appends with `flock`, and each applies the others' records before it answers.
public final class MemoryNamespace: @unchecked Sendable {
    public struct Stats: Sendable, Equatable {
        public var count: Int
        public var dimension: Int
        public var embedder: String
        public var vectorBytes: Int
        public var logBytes: Int
        public var snapshotBytes: Int
        /// Seconds since the epoch of the last compaction by this process, if any.
        public var lastCompaction: Double?
    }

    public let directory: String
    public let dimension: Int
    public let embedder: String
    /// Compact once the log is past this many bytes and larger than the snapshot: each compaction
    /// then at least halves what start-up replays, and a bulk load rewrites the snapshot only
    /// O(log n) times.
    public var compactionThreshold = 64 * 1024 * 1024

    /// What readers see; replaced whole when another process compacted.
    final class Contents: @unchecked Sendable {
        let index: VectorIndex
        let records = Mutex<[String: StoredMemory]>([:])
        init(index: VectorIndex) { self.index = index }
    }

    private let contents: Mutex<Contents>
    private let log: WriteAheadLog
    private let lockFD: Int32
    /// The log generation this process has loaded (written on `io` under the file lock; read by
    /// readers without waiting behind a flush's fsync) and how far it has applied the log.
    private let generation = Atomic<UInt64>(0)
    private let appliedOffset = Atomic<Int>(0)
    private let io = DispatchQueue(label: "memory-namespace-io")
    private let pending = Mutex<[(entries: [[UInt8]], decoded: [LogEntry], done: CheckedContinuation<Void, any Error>)]>([])
    private let lastCompaction = Mutex<Double?>(nil)
    /// How many group commits (each one write and one fsync) have run.
    let flushes = Atomic<Int>(0)

    private var snapshotPath: String { directory + "/snapshot.bin" }

    /// Opens (or creates) the namespace in `directory`, recovering from any crash: the snapshot is
    /// loaded and verified, the log replayed, a torn tail cut off.
    public init(directory: String, dimension: Int, embedder: String) throws(StoreError) {
        self.directory = directory
        self.dimension = dimension
        self.embedder = embedder
        try Self.makeDirectory(directory)
        lockFD = try FileIO.open(directory + "/lock", O_RDWR | O_CREAT)
        log = try WriteAheadLog.open(directory + "/wal.log")
        do {
            contents = Mutex(Contents(index: try VectorIndex(dimension: dimension)))
        } catch {
            throw .invalid("\(error)")
        }
        FileIO.lock(lockFD, exclusive: true)
        defer { FileIO.unlock(lockFD) }
        try recover()
    }

    deinit {
        log.close()
        close(lockFD)
    }

    // MARK: Reads

    public var count: Int {
        catchUpIfBehind()
        return contents.withLock { $0 }.index.count
    }

    public func get(_ key: String) -> StoredMemory? {
        catchUpIfBehind()
        let current = contents.withLock { $0 }
        guard var memory = current.records.withLock({ $0[key] }), let item = current.index.get(key) else { return nil }
        memory.vector = item.vector
        return memory
    }

    /// The `k` nearest memories, nearest first, with their squared L2 distances.
    public func retrieve(_ vector: [Float], k: Int, filter: [String: String]? = nil) throws(StoreError) -> [(StoredMemory, Float)] {
        catchUpIfBehind()
        let current = contents.withLock { $0 }
        let matches: [VectorIndex.Match]
        do {
            matches = try current.index.search(vector, k: k, filter: filter)
        } catch {
            throw .invalid("\(error)")
        }
        return current.records.withLock { records in
            matches.compactMap { match in records[match.key].map { ($0, match.distance) } }
        }
    }

    public func stats() -> Stats {
        catchUpIfBehind()
        let current = contents.withLock { $0 }
        var info = stat()
        let snapshotBytes = stat(snapshotPath, &info) == 0 ? Int(info.st_size) : 0
        return Stats(
            count: current.index.count, dimension: dimension, embedder: embedder, vectorBytes: current.index.vectorBytes,
            logBytes: FileIO.size(log.fd), snapshotBytes: snapshotBytes, lastCompaction: lastCompaction.withLock { $0 })
    }

    // MARK: Writes

    /// Stores (inserts or replaces) memories; returns once they are durable.
    public func store(_ memories: [StoredMemory]) async throws {
        for memory in memories where memory.vector.count != dimension {
            throw StoreError.mismatch(
                "the vector for '\(memory.key)' has \(memory.vector.count) components; this namespace holds \(dimension)")
        }
        try await commit(memories.map { .upsert($0) })
    }

    /// Deletes a memory (idempotent); returns whether it existed.
    @discardableResult
    public func delete(_ key: String) async throws -> Bool {
        let existed = get(key) != nil
        try await commit([.delete(key)])
        return existed
    }

    /// Writes a new snapshot of everything and empties the log.
    public func compact() async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            io.async { [self] in
                FileIO.lock(lockFD, exclusive: true)
                defer { FileIO.unlock(lockFD) }
                do throws(StoreError) {
                    try catchUpLocked()
                    try compactLocked()
                    continuation.resume()
                } catch {
                    continuation.resume(throwing: error)
                }
            }
        }
    }

    /// Group commit: the first writer schedules a flush; everyone queued by then shares it.
    private func commit(_ entries: [LogEntry]) async throws {
        let encoded = entries.map { $0.encoded() }
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            let first = pending.withLock { queue -> Bool in
                queue.append((encoded, entries, continuation))
                return queue.count == 1
            }
            if first { io.async { [self] in flush() } }
        }
    }

    private func flush() {
        let batch = pending.withLock { queue in
            defer { queue.removeAll() }
            return queue
        }
        guard !batch.isEmpty else { return }
        flushes.add(1, ordering: .relaxed)
        FileIO.lock(lockFD, exclusive: true)
        var failure: StoreError?
        do throws(StoreError) {
            try catchUpLocked()
            try log.append(batch.flatMap(\.entries))
            apply(batch.flatMap(\.decoded), to: contents.withLock { $0 })
            appliedOffset.store(FileIO.size(log.fd), ordering: .releasing)
            let logBytes = FileIO.size(log.fd)
            if logBytes > compactionThreshold, logBytes > snapshotBytes() { try compactLocked() }
        } catch {
            failure = error
        }
        FileIO.unlock(lockFD)
        for item in batch {
            if let failure { item.done.resume(throwing: failure) } else { item.done.resume() }
        }
    }

    // MARK: Other processes

    /// Applies records other processes appended (or reloads after their compaction) before answering.
    private func catchUpIfBehind() {
        // Size alone could miss another process's compaction followed by appends to the same length.
        let current = generation.load(ordering: .acquiring)
        guard FileIO.size(log.fd) != appliedOffset.load(ordering: .acquiring) || (try? log.generation()) != current else {
            return
        }
        io.sync {
            FileIO.lock(lockFD, exclusive: false)
            defer { FileIO.unlock(lockFD) }
            try? catchUpLocked()
        }
    }

    /// Under the file lock, on `io`.
    private func catchUpLocked() throws(StoreError) {
        let current = try log.generation()
        if current != generation.load(ordering: .acquiring) {
            // Another process compacted: its snapshot holds everything up to its new log.
            try reload()
            return
        }
        let (entries, end) = try log.read(from: appliedOffset.load(ordering: .acquiring))
        apply(entries, to: contents.withLock { $0 })
        appliedOffset.store(end, ordering: .releasing)
    }

    private func snapshotBytes() -> Int {
        var info = stat()
        return stat(snapshotPath, &info) == 0 ? Int(info.st_size) : 0
    }

    private func compactLocked() throws(StoreError) {
        let current = contents.withLock { $0 }
        let items = current.index.allItems()
        let memories = current.records.withLock { records in
            items.compactMap { item -> StoredMemory? in
                guard var memory = records[item.key] else { return nil }
                memory.vector = item.vector
                return memory
            }
        }
        let next = generation.load(ordering: .acquiring) + 1
        try SnapshotFile.write(
            .init(dimension: dimension, embedder: embedder, generation: next, memories: memories), to: snapshotPath,
            directory: directory)
        try log.reset(generation: next)
        generation.store(next, ordering: .releasing)
        appliedOffset.store(WriteAheadLog.headerSize, ordering: .releasing)
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        lastCompaction.withLock { $0 = Double(now.tv_sec) + Double(now.tv_nsec) / 1e9 }
    }

    // MARK: Recovery

    /// Under the exclusive lock: snapshot, log generation, replay, torn tail.
    private func recover() throws(StoreError) {
        try reload()
        // Cut what a crash left half-written (safe: appends hold the exclusive lock we hold).
        try log.truncate(at: appliedOffset.load(ordering: .acquiring))
    }

    private func reload() throws(StoreError) {
        let fresh: VectorIndex
        do {
            fresh = try VectorIndex(dimension: dimension)
        } catch {
            throw .invalid("\(error)")
        }
        let next = Contents(index: fresh)
        // The index maps the file's rows into its row region (copy-on-write, no copy) and derives
        // norms and its coded copy from them in one parallel pass.
        let snapshot = try SnapshotFile.withMapped(snapshotPath) { mapped throws(StoreError) -> (dimension: Int, embedder: String, generation: UInt64) in
            if mapped.dimension == dimension && mapped.embedder == embedder {
                let keys = mapped.records.map(\.key)
                let attributes = mapped.records.map(\.attributes)
                guard
                    fresh.adopt(
                        rowsOf: mapped.file, offset: mapped.rowsOffset, length: mapped.rowBytes, keys: keys, attributes: attributes)
                else { throw .io("cannot map the rows of \(snapshotPath): \(FileIO.errorText())") }
                next.records.withLock { records in
                    records.reserveCapacity(mapped.records.count)
                    for memory in mapped.records { records[memory.key] = memory }
                }
            }
            return (mapped.dimension, mapped.embedder, mapped.generation)
        }
        if let snapshot {
            guard snapshot.dimension == dimension, snapshot.embedder == embedder else {
                throw .mismatch(
                    "this namespace holds \(snapshot.dimension)-dimensional vectors from \(snapshot.embedder); "
                        + "the request has \(dimension)-dimensional vectors from \(embedder)")
            }
        } else {
            // A new namespace: record its dimension and embedder at once.
            try SnapshotFile.write(
                .init(dimension: dimension, embedder: embedder, generation: 0, memories: []), to: snapshotPath,
                directory: directory)
        }
        let snapshotGeneration = snapshot?.generation ?? 0
        let logGeneration = try log.generation()
        if logGeneration == nil || logGeneration! < snapshotGeneration {
            // A new log, or a compaction that crashed after its snapshot rename: the snapshot has it all.
            try log.reset(generation: snapshotGeneration)
        } else if logGeneration! > snapshotGeneration {
            throw .corrupt("the log (generation \(logGeneration!)) is newer than the snapshot (\(snapshotGeneration))")
        }
        let (entries, end) = try log.read(from: WriteAheadLog.headerSize)
        apply(entries, to: next)
        generation.store(snapshotGeneration, ordering: .releasing)
        appliedOffset.store(end, ordering: .releasing)
        contents.withLock { $0 = next }
    }

    private func apply(_ entries: [LogEntry], to contents: Contents) {
        for entry in entries {
            switch entry {
            case .upsert(var memory):
                guard (try? contents.index.upsert(.init(key: memory.key, vector: memory.vector, attributes: memory.attributes))) != nil
                else { continue }
                memory.vector = []
                contents.records.withLock { $0[memory.key] = memory }
            case .delete(let key):
                contents.index.delete(key)
                _ = contents.records.withLock { $0.removeValue(forKey: key) }
            }
        }
    }

    /// The dimension and embedder of the namespace in `directory`; nil when none exists there.
    public static func layout(of directory: String) throws(StoreError) -> (dimension: Int, embedder: String)? {
        try SnapshotFile.readLayout(directory + "/snapshot.bin")
    }

    /// Creates `path` (and its parents) and checks that it is writable.
    public static func prepareDirectory(_ path: String) throws(StoreError) {
        try makeDirectory(path)
        guard access(path, W_OK) == 0 else { throw .io("\(path) is not writable: \(FileIO.errorText())") }
    }

    private static func makeDirectory(_ path: String) throws(StoreError) {
        var partial = path.hasPrefix("/") ? "" : "."
        for component in path.split(separator: "/") {
            partial += "/" + component
            if mkdir(partial, 0o755) != 0 && errno != EEXIST {
                throw .io("mkdir \(partial): \(FileIO.errorText())")
            }
        }
    }
}

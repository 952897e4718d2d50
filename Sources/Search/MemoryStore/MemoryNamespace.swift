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
        /// Why the last automatic compaction failed, until one succeeds (writes go on meanwhile).
        public var compactionFailure: String?
        /// Why the namespace takes no more writes, if it does not.
        public var writeFailure: String?
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
    private let compactionFailure = Mutex<StoreError?>(nil)
    /// Set when a failure could not be undone (the log could not be cut back, or a logged write
    /// could not be applied): from then on writes are refused, reads still answer.
    private let failure = Mutex<StoreError?>(nil)
    /// How many group commits (each one write and one fsync) have run.
    let flushes = Atomic<Int>(0)
    /// A flush of ours is under way: it catches up with other processes itself, so a reader need
    /// not wait behind its fsync (what it is writing is not acknowledged yet, so not yet visible).
    private let flushing = Atomic<Bool>(false)

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
            throw error.isResourceLimit ? .limit("\(error)") : .invalid("\(error)")
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
        return Stats(
            count: current.index.count, dimension: dimension, embedder: embedder, vectorBytes: current.index.vectorBytes,
            logBytes: FileIO.size(log.fd), snapshotBytes: snapshotBytes(), lastCompaction: lastCompaction.withLock { $0 },
            compactionFailure: compactionFailure.withLock { $0 }?.description, writeFailure: writeFailure?.description)
    }

    // MARK: Writes

    /// Stores (inserts or replaces) memories; returns once they are durable and applied. Every
    /// vector is checked first, as the index will check it: nothing is logged that the index
    /// would refuse.
    public func store(_ memories: [StoredMemory]) async throws {
        let index = contents.withLock { $0 }.index
        for memory in memories {
            guard memory.vector.count == dimension else {
                throw StoreError.mismatch(
                    "the vector for '\(memory.key)' has \(memory.vector.count) components; this namespace holds \(dimension)")
            }
            do {
                try index.check(memory.vector)
            } catch {
                throw StoreError.invalid("the vector for '\(memory.key)' is refused: \(error)")
            }
        }
        try await commit(memories.map { .upsert($0) })
    }

    /// Why the namespace takes no more writes, if it does not.
    public var writeFailure: StoreError? { failure.withLock { $0 } }

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
                    try catchUpLocked(exclusive: true)
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
        flushing.store(true, ordering: .releasing)
        defer { flushing.store(false, ordering: .releasing) }
        FileIO.lock(lockFD, exclusive: true)
        var outcome: StoreError?
        do throws(StoreError) {
            try flushLocked(entries: batch.flatMap(\.entries), decoded: batch.flatMap(\.decoded))
        } catch {
            outcome = error
        }
        FileIO.unlock(lockFD)
        for item in batch {
            if let outcome { item.done.resume(throwing: outcome) } else { item.done.resume() }
        }
    }

    /// One group commit, under the exclusive lock: catch up, make room, append, apply.
    private func flushLocked(entries: [[UInt8]], decoded: [LogEntry]) throws(StoreError) {
        if let failure = failure.withLock({ $0 }) { throw failure }
        try catchUpLocked(exclusive: true)
        let current = contents.withLock { $0 }
        // Room for the new rows first: once a record is logged it must be applied.
        let newKeys = Set(decoded.compactMap { entry -> String? in
            if case .upsert(let memory) = entry, !current.index.contains(memory.key) { return memory.key }
            return nil
        })
        do {
            try current.index.reserve(additional: newKeys.count)
        } catch {
            throw .limit("no room for \(newKeys.count) more vectors in \(directory): \(error)")
        }
        let end = appliedOffset.load(ordering: .acquiring)
        do {
            try log.append(entries, at: end)
        } catch {
            if error.stopsWrites { fail(error) }
            throw error
        }
        do {
            try apply(decoded, to: current)
        } catch {
            let failed = StoreError.failed(
                "a logged write could not be applied (\(error)); it is durable and start-up will load it: restart the worker")
            fail(failed)
            throw failed
        }
        appliedOffset.store(FileIO.size(log.fd), ordering: .releasing)
        let logBytes = FileIO.size(log.fd)
        if logBytes > compactionThreshold, logBytes > snapshotBytes() {
            // The writes are durable and applied whatever happens here: a compaction that fails (a
            // full disk) must not fail them; it is tried again on a later flush.
            do {
                try compactLocked()
                compactionFailure.withLock { $0 = nil }
            } catch {
                compactionFailure.withLock { $0 = error }
            }
        }
    }

    private func fail(_ error: StoreError) {
        failure.withLock { $0 = $0 ?? error }
    }

    // MARK: Other processes

    /// Applies records other processes appended (or reloads after their compaction) before answering.
    private func catchUpIfBehind() {
        if flushing.load(ordering: .acquiring) { return }
        // Size alone could miss another process's compaction followed by appends to the same length.
        let current = generation.load(ordering: .acquiring)
        guard FileIO.size(log.fd) != appliedOffset.load(ordering: .acquiring) || (try? log.generation()) != current else {
            return
        }
        io.sync {
            FileIO.lock(lockFD, exclusive: false)
            defer { FileIO.unlock(lockFD) }
            // A reader answers with what it has; a failure here stops writes (they report it).
            do throws(StoreError) { try catchUpLocked(exclusive: false) } catch { fail(error) }
        }
    }

    /// Under the file lock, on `io`. Applies what other processes appended. With the exclusive
    /// lock, a torn tail (a writer that crashed mid-append) is cut off before anything is appended
    /// after it; damage stops the namespace.
    private func catchUpLocked(exclusive: Bool) throws(StoreError) {
        let current = try log.generation()
        if current != generation.load(ordering: .acquiring) {
            // Another process compacted: its snapshot holds everything up to its new log.
            try reload()
            if exclusive { try cutTornTail() }
            return
        }
        let read = try log.read(from: appliedOffset.load(ordering: .acquiring))
        try apply(read.entries, to: contents.withLock { $0 })
        appliedOffset.store(read.end, ordering: .releasing)
        switch read.tail {
        case .clean: break
        case .torn: if exclusive { try log.truncate(at: read.end) }
        case .damaged(let reason): throw .corrupt(reason)
        }
    }

    /// Cuts a torn tail after a reload (which read the whole log). Exclusive lock only.
    private func cutTornTail() throws(StoreError) {
        let size = FileIO.size(log.fd)
        let end = appliedOffset.load(ordering: .acquiring)
        if size > end { try log.truncate(at: end) }
    }

    private func snapshotBytes() -> Int { FileIO.size(atPath: snapshotPath) ?? 0 }

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

    /// Under the exclusive lock: snapshot, log generation, replay, torn tail (cut: appends hold
    /// the exclusive lock we hold). Damage is reported and the files are left as they are.
    private func recover() throws(StoreError) {
        try reload()
        try cutTornTail()
    }

    private func reload() throws(StoreError) {
        let fresh: VectorIndex
        do {
            fresh = try VectorIndex(dimension: dimension)
        } catch {
            throw error.isResourceLimit ? .limit("\(error)") : .invalid("\(error)")
        }
        let next = Contents(index: fresh)
        // The index maps the file's rows into its row region (copy-on-write, no copy) and derives
        // norms and its coded copy from them in one parallel pass.
        let snapshot = try SnapshotFile.withMapped(snapshotPath) { mapped throws(StoreError) -> (dimension: Int, embedder: String, generation: UInt64) in
            if mapped.dimension == dimension && mapped.embedder == embedder {
                let keys = mapped.records.map(\.key)
                let attributes = mapped.records.map(\.attributes)
                let adopted: Bool
                do {
                    adopted = try fresh.adopt(
                        rowsOf: mapped.file, offset: mapped.rowsOffset, length: mapped.rowBytes, keys: keys, attributes: attributes)
                } catch {
                    throw .limit("loading \(snapshotPath): \(error)")
                }
                guard adopted else { throw .io("cannot map the rows of \(snapshotPath): \(FileIO.errorText())") }
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
            // No snapshot: a new namespace, unless the log says one existed (then it was lost).
            let logBytes = FileIO.size(log.fd)
            if let logGeneration = try log.generation(), logGeneration > 0 || logBytes > WriteAheadLog.headerSize {
                throw Self.lostSnapshot(directory, logBytes: logBytes, generation: logGeneration)
            }
            // Record the new namespace's dimension and embedder at once.
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
        let read = try log.read(from: WriteAheadLog.headerSize)
        if case .damaged(let reason) = read.tail {
            throw .corrupt("\(reason); the log is kept as it is. Move it aside to start from the snapshot, or restore it")
        }
        try apply(read.entries, to: next)
        generation.store(snapshotGeneration, ordering: .releasing)
        appliedOffset.store(read.end, ordering: .releasing)
        contents.withLock { $0 = next }
    }

    /// Applies logged changes; a change the index refuses is an error, never skipped.
    private func apply(_ entries: [LogEntry], to contents: Contents) throws(StoreError) {
        for entry in entries {
            switch entry {
            case .upsert(var memory):
                do {
                    try contents.index.upsert(.init(key: memory.key, vector: memory.vector, attributes: memory.attributes))
                } catch {
                    throw error.isResourceLimit
                        ? .limit("loading '\(memory.key)' into \(directory): \(error)")
                        : .corrupt("the log of \(directory) holds a record the index refuses ('\(memory.key)': \(error))")
                }
                memory.vector = []
                contents.records.withLock { $0[memory.key] = memory }
            case .delete(let key):
                contents.index.delete(key)
                _ = contents.records.withLock { $0.removeValue(forKey: key) }
            }
        }
    }

    /// The dimension and embedder of the namespace in `directory`; nil when none exists there.
    /// A directory with a log but no snapshot lost its snapshot: that is damage, not "no namespace".
    public static func layout(of directory: String) throws(StoreError) -> (dimension: Int, embedder: String)? {
        if let layout = try SnapshotFile.readLayout(directory + "/snapshot.bin") { return layout }
        if let logBytes = FileIO.size(atPath: directory + "/wal.log"), logBytes > WriteAheadLog.headerSize {
            throw lostSnapshot(directory, logBytes: logBytes)
        }
        return nil
    }

    /// A log that shows the namespace existed, beside no snapshot.
    private static func lostSnapshot(_ directory: String, logBytes: Int, generation: UInt64? = nil) -> StoreError {
        .corrupt(
            "\(directory)/snapshot.bin is missing, but its log holds \(generation.map { "generation \($0) and " } ?? "")"
                + "\(logBytes - WriteAheadLog.headerSize) bytes of records; restore the snapshot (nothing was changed)")
    }

    /// Creates `path` (and its parents) and checks that it is a directory files can be made in:
    /// a probe file is created and removed, so a regular file, a read-only mount or a full disk
    /// is found before the worker reports itself ready.
    public static func prepareDirectory(_ path: String) throws(StoreError) {
        // makeDirectory also checks that what is there is a directory.
        try makeDirectory(path)
        let probe = path + "/.write-probe"
        do throws(StoreError) {
            let fd = try FileIO.open(probe, O_WRONLY | O_CREAT | O_TRUNC)
            defer {
                close(fd)
                unlink(probe)
            }
            try FileIO.writeAll(fd, Array("ok".utf8), path: probe)
            try FileIO.fsync(fd, path: probe)
        } catch {
            throw .io("\(path) cannot be written to: \(error)")
        }
    }

    /// Removes the namespace in `directory` if it holds nothing (a first store that failed), so a
    /// failure leaves nothing behind. Decided under the exclusive file lock, so a namespace another
    /// process has written to meanwhile is kept; only the namespace's own files are removed.
    public static func removeIfEmpty(_ directory: String) {
        let lockFD = Glibc.open(directory + "/lock", O_RDWR | O_CLOEXEC)
        if lockFD >= 0 {
            FileIO.lock(lockFD, exclusive: true)
            defer {
                FileIO.unlock(lockFD)
                close(lockFD)
            }
            if let logBytes = FileIO.size(atPath: directory + "/wal.log"), logBytes > WriteAheadLog.headerSize { return }
            // A snapshot that cannot be read is someone's damaged data, not an empty namespace.
            do {
                if let records = try SnapshotFile.withMapped(directory + "/snapshot.bin", { mapped in mapped.records.count }),
                    records > 0
                { return }
            } catch {
                return
            }
            for file in ["snapshot.bin", "snapshot.bin.tmp", "wal.log", "lock"] { unlink(directory + "/" + file) }
        }
        rmdir(directory)
    }

    private static func makeDirectory(_ path: String) throws(StoreError) {
        var partial = path.hasPrefix("/") ? "" : "."
        for component in path.split(separator: "/") {
            partial += "/" + component
            if mkdir(partial, 0o755) != 0 && errno != EEXIST {
                throw .io("mkdir \(partial): \(FileIO.errorText())")
            }
        }
        var info = stat()
        guard stat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR else {
            throw .io("\(path) is not a directory")
        }
    }
}

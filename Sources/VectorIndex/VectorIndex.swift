import COpenBLAS
import Dispatch

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An exact (flat) squared-L2 index over float32 vectors of one dimension, keyed by strings.
///
/// Rows are contiguous and 64-byte aligned; norms are stored at write time; deletes swap the last
/// row into the hole (O(1)). Searches shard the rows across the cores, each shard running
/// single-threaded BLAS (`sgemv` for one query, `sgemm` for batches) and its own top-k heap.
/// Many concurrent readers, one writer.
public final class VectorIndex: @unchecked Sendable {
    public struct Item: Sendable {
        public var key: String
        public var vector: [Float]
        /// Equality-filterable attributes (the caller encodes values as strings).
        public var attributes: [String: String]

        public init(key: String, vector: [Float], attributes: [String: String] = [:]) {
            self.key = key
            self.vector = vector
            self.attributes = attributes
        }
    }

    public struct Match: Sendable, Equatable {
        public var key: String
        /// Squared L2 distance, never negative.
        public var distance: Float
    }

    public let dimension: Int
    let lock = ReadWriteLock()
    // Guarded by `lock`.
    var rows: UnsafeMutablePointer<Float>
    var capacity: Int
    /// Set when `rows` is a mapping adopted from a snapshot (released with munmap, not free).
    var mappedLength: Int?
    var norms: [Float] = []
    var keys: [String] = []
    var sequences: [UInt64] = []
    var attributes: [[String: String]] = []
    var slots: [String: Int] = [:]
    var nextSequence: UInt64 = 0

    /// Shards per search: one per core, so BLAS must not start threads of its own underneath.
    let shards: Int

    public init(dimension: Int, shards: Int? = nil) throws(VectorIndexError) {
        guard (1...65536).contains(dimension) else { throw .badDimension(dimension) }
        self.dimension = dimension
        self.shards = max(1, shards ?? ProcessInfoCores.count)
        capacity = 1024
        rows = Self.allocateRows(capacity * dimension)
        BLASThreads.pinToOne()
    }

    deinit { releaseRows() }

    private func releaseRows() {
        if let mappedLength {
            munmap(rows, mappedLength)
        } else {
            free(rows)
        }
        mappedLength = nil
    }

    public var count: Int { lock.withReadLock { keys.count } }

    /// Bytes of vector storage in use (rows and norms).
    public var vectorBytes: Int { lock.withReadLock { keys.count * (dimension + 1) * MemoryLayout<Float>.size } }

    // MARK: Writes

    /// Inserts new keys and replaces existing ones (a replaced key counts as newly inserted for
    /// tie-breaking). All items are validated before anything changes.
    public func upsert(_ items: [Item]) throws(VectorIndexError) {
        var seen = Set<String>()
        for item in items {
            try validate(item.vector)
            guard seen.insert(item.key).inserted else { throw .duplicateKeyInBatch(item.key) }
        }
        lock.withWriteLock {
            for item in items { upsertLocked(item) }
        }
    }

    public func upsert(_ item: Item) throws(VectorIndexError) { try upsert([item]) }

    /// Removes a key; false when it was not there. O(1): the last row moves into the hole.
    @discardableResult
    public func delete(_ key: String) -> Bool {
        lock.withWriteLock {
            guard let slot = slots.removeValue(forKey: key) else { return false }
            let last = keys.count - 1
            if slot != last {
                (rows + slot * dimension).update(from: rows + last * dimension, count: dimension)
                norms[slot] = norms[last]
                keys[slot] = keys[last]
                sequences[slot] = sequences[last]
                attributes[slot] = attributes[last]
                slots[keys[slot]] = slot
            }
            norms.removeLast()
            keys.removeLast()
            sequences.removeLast()
            attributes.removeLast()
            return true
        }
    }

    public func get(_ key: String) -> Item? {
        lock.withReadLock {
            guard let slot = slots[key] else { return nil }
            let vector = Array(UnsafeBufferPointer(start: rows + slot * dimension, count: dimension))
            return Item(key: key, vector: vector, attributes: attributes[slot])
        }
    }

    public func contains(_ key: String) -> Bool { lock.withReadLock { slots[key] != nil } }

    /// Every item in insertion order (for snapshots).
    public func allItems() -> [Item] {
        lock.withReadLock {
            keys.indices.sorted { sequences[$0] < sequences[$1] }.map { slot in
                Item(
                    key: keys[slot], vector: Array(UnsafeBufferPointer(start: rows + slot * dimension, count: dimension)),
                    attributes: attributes[slot])
            }
        }
    }

    func validate(_ vector: [Float]) throws(VectorIndexError) {
        guard vector.count == dimension else { throw .wrongDimension(expected: dimension, got: vector.count) }
        if let bad = vector.firstIndex(where: { !$0.isFinite }) { throw .notFinite(index: bad) }
    }

    private func upsertLocked(_ item: Item) {
        let norm = item.vector.withUnsafeBufferPointer { cblas_sdot(Int32(dimension), $0.baseAddress, 1, $0.baseAddress, 1) }
        let slot: Int
        if let existing = slots[item.key] {
            slot = existing
            norms[slot] = norm
            sequences[slot] = nextSequence
            attributes[slot] = item.attributes
        } else {
            slot = keys.count
            if slot == capacity { grow() }
            norms.append(norm)
            keys.append(item.key)
            sequences.append(nextSequence)
            attributes.append(item.attributes)
            slots[item.key] = slot
        }
        nextSequence += 1
        item.vector.withUnsafeBufferPointer { (rows + slot * dimension).update(from: $0.baseAddress!, count: dimension) }
    }

    private func grow() {
        let newCapacity = max(1024, capacity * 2)
        let newRows = Self.allocateRows(newCapacity * dimension)
        newRows.update(from: rows, count: keys.count * dimension)
        releaseRows()
        rows = newRows
        capacity = newCapacity
    }

    /// Takes over a private (copy-on-write) mapping of `keys.count` rows as the row storage, with
    /// no copy: a snapshot's rows serve queries straight from the page cache. The index unmaps it.
    public func adopt(
        mappedRows: UnsafeMutablePointer<Float>, mappedLength: Int, norms newNorms: [Float], keys newKeys: [String],
        attributes newAttributes: [[String: String]]
    ) {
        lock.withWriteLock {
            releaseRows()
            rows = mappedRows
            self.mappedLength = mappedLength
            capacity = newKeys.count
            norms = newNorms
            keys = newKeys
            attributes = newAttributes
            sequences = (0..<UInt64(newKeys.count)).map { $0 }
            nextSequence = UInt64(newKeys.count)
            slots = Dictionary(uniqueKeysWithValues: newKeys.enumerated().map { ($1, $0) })
        }
    }

    static func allocateRows(_ count: Int) -> UnsafeMutablePointer<Float> {
        var raw: UnsafeMutableRawPointer?
        let status = posix_memalign(&raw, 64, max(64, count * MemoryLayout<Float>.size))
        precondition(status == 0 && raw != nil, "out of memory allocating \(count) floats")
        return raw!.bindMemory(to: Float.self, capacity: count)
    }
}

enum ProcessInfoCores {
    static let count: Int = max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
}

/// The index owns the threading: BLAS runs single-threaded inside each shard.
enum BLASThreads {
    private static let once: Void = { openblas_set_num_threads(1) }()
    static func pinToOne() { _ = once }
}

import COpenBLAS
import CVectorKernels
import Dispatch

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An exact (flat) squared-L2 index over float32 vectors of one dimension, keyed by strings.
///
/// Rows are contiguous and 64-byte aligned; norms are stored at write time; deletes swap the last
/// row into the hole (O(1)). Searches shard the rows across the cores, each shard with its own
/// heap. Two scoring kernels, same results:
/// - `float32`: single-threaded BLAS per shard (`sgemv` for one query, `sgemm` for batches);
/// - `int8Prefilter` (CPUs with AVX512-VNNI): an 8-bit coded copy of the rows, a quarter of the
///   bytes to stream, yields rigorous lower and upper distance bounds per row; only rows whose
///   lower bound can beat the k-th best upper bound are re-ranked, exactly, in float64. Every row
///   is still scanned; the copy costs a quarter of the float32 rows' memory.
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

    /// How searches score rows; both give the same results.
    public enum Kernel: Sendable, Equatable {
        /// `int8Prefilter` where the CPU supports it, else `float32`.
        case automatic
        case float32
        case int8Prefilter
    }

    public let dimension: Int
    /// The kernel in use (`automatic` resolved).
    public let kernel: Kernel
    /// Codes per coded row: the dimension rounded up to 64 (one 64-byte vector).
    let padded: Int
    let lock = ReadWriteLock()
    // Guarded by `lock`.
    var rows: UnsafeMutablePointer<Float>
    var capacity: Int
    /// Bytes mapped at `rows` (anonymous, or a snapshot's rows adopted copy-on-write).
    var rowsLength: Int
    /// The coded copy of `rows` (prefilter kernel only), `padded` bytes per row.
    var codes: UnsafeMutablePointer<UInt8>?
    var codesLength = 0
    /// Per row: squared norm (float64 sum, rounded), norm rounded up, and (prefilter kernel) the
    /// code scale and coding error.
    var norms: [Float] = []
    var lengths: [Float] = []
    var scales: [Float] = []
    var errors: [Float] = []
    var keys: [String] = []
    var sequences: [UInt64] = []
    var attributes: [[String: String]] = []
    var slots: [String: Int] = [:]
    var nextSequence: UInt64 = 0

    /// Shards per search: one per core, so BLAS must not start threads of its own underneath.
    let shards: Int

    public init(dimension: Int, shards: Int? = nil, kernel: Kernel = .automatic) throws(VectorIndexError) {
        guard (1...65536).contains(dimension) else { throw .badDimension(dimension) }
        self.dimension = dimension
        self.shards = max(1, shards ?? ProcessInfoCores.count)
        let prefilter = kernel != .float32 && vk_int8_available()
        self.kernel = prefilter ? .int8Prefilter : .float32
        padded = (dimension + 63) / 64 * 64
        capacity = 1024
        rowsLength = capacity * dimension * MemoryLayout<Float>.size
        rows = RowMemory.allocate(bytes: rowsLength).bindMemory(to: Float.self, capacity: capacity * dimension)
        if prefilter {
            codesLength = capacity * padded
            codes = RowMemory.allocate(bytes: codesLength).bindMemory(to: UInt8.self, capacity: codesLength)
        }
        BLASThreads.pinToOne()
    }

    deinit {
        munmap(rows, rowsLength)
        if let codes { munmap(codes, codesLength) }
    }

    public var count: Int { lock.withReadLock { keys.count } }

    /// Bytes of vector storage in use: rows, per-row bounds, and the coded copy when there is one.
    public var vectorBytes: Int {
        lock.withReadLock { keys.count * ((dimension + 4) * MemoryLayout<Float>.size + (codes == nil ? 0 : padded)) }
    }

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
                if let codes { (codes + slot * padded).update(from: codes + last * padded, count: padded) }
                norms[slot] = norms[last]
                lengths[slot] = lengths[last]
                scales[slot] = scales[last]
                errors[slot] = errors[last]
                keys[slot] = keys[last]
                sequences[slot] = sequences[last]
                attributes[slot] = attributes[last]
                slots[keys[slot]] = slot
            }
            norms.removeLast()
            lengths.removeLast()
            scales.removeLast()
            errors.removeLast()
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
        // Distances add two squared norms and a dot product in float32: keep them finite.
        var norm: Float = 0
        var length: Float = 0
        vector.withUnsafeBufferPointer { vk_norm($0.baseAddress, Int32(dimension), &norm, &length) }
        guard norm <= Self.maximumSquaredNorm else { throw .tooLarge }
    }

    static let maximumSquaredNorm: Float = 1e36

    private func upsertLocked(_ item: Item) {
        let slot: Int
        if let existing = slots[item.key] {
            slot = existing
            sequences[slot] = nextSequence
            attributes[slot] = item.attributes
        } else {
            slot = keys.count
            if slot == capacity { grow() }
            norms.append(0)
            lengths.append(0)
            scales.append(0)
            errors.append(0)
            keys.append(item.key)
            sequences.append(nextSequence)
            attributes.append(item.attributes)
            slots[item.key] = slot
        }
        nextSequence += 1
        item.vector.withUnsafeBufferPointer { (rows + slot * dimension).update(from: $0.baseAddress!, count: dimension) }
        prepareRows(slot..<slot + 1)
    }

    /// Per-row bounds and the codes of rows whose float32 values are in place.
    func prepareRows(_ range: Range<Int>) {
        withRowSide { prepareRows(range, side: $0) }
    }

    /// The same into caller-held buffers, so disjoint ranges can be prepared in parallel.
    private func prepareRows(_ range: Range<Int>, side: RowSide) {
        let start = range.lowerBound
        vk_prepare_rows(
            rows + start * dimension, range.count, Int32(dimension), codes.map { $0 + start * padded }, Int32(padded),
            side.norms + start, side.lengths + start, side.scales + start, side.errors + start)
    }

    /// The per-row arrays as pointers (the caller holds the write lock).
    struct RowSide: @unchecked Sendable {
        var norms, lengths, scales, errors: UnsafeMutablePointer<Float>
    }

    func withRowSide<Result>(_ body: (RowSide) -> Result) -> Result {
        norms.withUnsafeMutableBufferPointer { norms in
            lengths.withUnsafeMutableBufferPointer { lengths in
                scales.withUnsafeMutableBufferPointer { scales in
                    errors.withUnsafeMutableBufferPointer { errors in
                        body(RowSide(
                            norms: norms.baseAddress!, lengths: lengths.baseAddress!, scales: scales.baseAddress!,
                            errors: errors.baseAddress!))
                    }
                }
            }
        }
    }

    private func grow() {
        let newCapacity = max(1024, capacity * 2)
        let newLength = newCapacity * dimension * MemoryLayout<Float>.size
        let newRows = RowMemory.allocate(bytes: newLength).bindMemory(to: Float.self, capacity: newCapacity * dimension)
        newRows.update(from: rows, count: keys.count * dimension)
        munmap(rows, rowsLength)
        rows = newRows
        rowsLength = newLength
        if let codes {
            let newCodesLength = newCapacity * padded
            let newCodes = RowMemory.allocate(bytes: newCodesLength).bindMemory(to: UInt8.self, capacity: newCodesLength)
            newCodes.update(from: codes, count: keys.count * padded)
            munmap(codes, codesLength)
            self.codes = newCodes
            codesLength = newCodesLength
        }
        capacity = newCapacity
    }

    /// Takes over a private (copy-on-write) mapping of `keys.count` rows as the row storage, with
    /// no copy: a snapshot's rows serve queries straight from the page cache. The index unmaps it.
    /// Per-row bounds and the codes are computed here, in parallel, in one pass over the rows.
    public func adopt(
        mappedRows: UnsafeMutablePointer<Float>, mappedLength: Int, keys newKeys: [String],
        attributes newAttributes: [[String: String]]
    ) {
        lock.withWriteLock {
            munmap(rows, rowsLength)
            rows = mappedRows
            rowsLength = mappedLength
            let count = newKeys.count
            capacity = count
            if let codes {
                munmap(codes, codesLength)
                codesLength = max(1, count) * padded
                self.codes = RowMemory.allocate(bytes: codesLength).bindMemory(to: UInt8.self, capacity: codesLength)
            }
            norms = [Float](repeating: 0, count: count)
            lengths = norms
            scales = norms
            errors = norms
            let chunk = 8192
            let chunks = (count + chunk - 1) / chunk
            withRowSide { side in
                parallelFor(chunks) { index in
                    let start = index * chunk
                    prepareRows(start..<min(count, start + chunk), side: side)
                }
            }
            keys = newKeys
            attributes = newAttributes
            sequences = (0..<UInt64(count)).map { $0 }
            nextSequence = UInt64(count)
            slots = Dictionary(uniqueKeysWithValues: newKeys.enumerated().map { ($1, $0) })
        }
    }
}

/// Anonymous row memory with transparent huge pages requested for large blocks (Linux aligns large
/// anonymous mappings to 2 MB): a scan over a gigabyte of rows then walks 512 times fewer
/// page-table entries.
enum RowMemory {
    static let hugePage = 2 << 20

    static func allocate(bytes: Int) -> UnsafeMutableRawPointer {
        let length = max(bytes, 64)
        guard let mapped = mmap(nil, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), mapped != MAP_FAILED
        else { fatalError("out of memory mapping \(length) bytes of vector rows") }
        if length >= hugePage { _ = madvise(mapped, length, MADV_HUGEPAGE) }
        return mapped
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

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
/// Rows are contiguous and 64-byte aligned, and grow in place (`RowRegion`); norms are stored at
/// write time; deletes swap the last row into the hole (O(1)). Searches shard the rows across the
/// cores, each shard with its own heap. Two scoring kernels, same results:
/// - `float32`: single-threaded BLAS per shard (`sgemv` for one query, `sgemm` for batches);
/// - `int8Prefilter` (CPUs with AVX512-VNNI or AVX2, the kernels chosen at run time): an 8-bit
///   coded copy of the rows, a quarter of the bytes to stream, yields rigorous lower and upper
///   distance bounds per row; only rows whose lower bound can beat the k-th best upper bound are
///   re-ranked, exactly, in float64. Every row is still scanned; the copy costs a quarter of the
///   float32 rows' memory.
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
        /// `int8Prefilter` where the CPU supports it (AVX512-VNNI or AVX2), else `float32`.
        case automatic
        case float32
        case int8Prefilter
    }

    public let dimension: Int
    /// The kernel in use (`automatic` resolved).
    public let kernel: Kernel
    /// The int8 kernels' level (`VK_LEVEL_AVX2`, `VK_LEVEL_AVX512_VNNI`); `VK_LEVEL_PORTABLE`
    /// with the float32 kernel.
    let level: Int32
    /// Codes per coded row: the dimension rounded up to 64 (one 64-byte vector).
    let padded: Int
    let lock = ReadWriteLock()
    // Guarded by `lock`.
    /// Where `rows` live: anonymous memory, after `adopt` starting with a snapshot's rows mapped
    /// copy-on-write.
    var rowRegion: RowRegion
    var rows: UnsafeMutablePointer<Float>
    /// The coded copy of `rows` (prefilter kernel only), `padded` bytes per row.
    var codeRegion: RowRegion?
    var codes: UnsafeMutablePointer<UInt8>?
    var columns = RowColumns()
    var keys: [String] = []
    var sequences: [UInt64] = []
    var attributes: [[String: String]] = []
    var slots: [String: Int] = [:]
    var nextSequence: UInt64 = 0

    /// Shards per search: one per core, so BLAS must not start threads of its own underneath.
    let shards: Int

    public convenience init(dimension: Int, shards: Int? = nil, kernel: Kernel = .automatic) throws(VectorIndexError) {
        try self.init(dimension: dimension, shards: shards, kernel: kernel, reservation: RowRegion.initialReservation)
    }

    /// `reservation`: bytes of address space for the rows (and for the codes) before they move.
    /// `level`: the int8 kernels' level (tests run each one the CPU has); the default is
    /// `vk_int8_level()`, and a level the CPU cannot run is lowered to one it can.
    init(dimension: Int, shards: Int?, kernel: Kernel, reservation: Int, level: Int32? = nil) throws(VectorIndexError) {
        // The AVX2 kernels' 32-bit sums are exact up to this dimension (CVectorKernels/AVX2.c).
        guard (1...65536).contains(dimension) else { throw .badDimension(dimension) }
        self.dimension = dimension
        self.shards = max(1, shards ?? ProcessInfoCores.count)
        let runnable = min(level ?? vk_int8_level(), vk_cpu_level())
        let prefilter = kernel != .float32 && runnable > VK_LEVEL_PORTABLE
        self.kernel = prefilter ? .int8Prefilter : .float32
        self.level = prefilter ? runnable : VK_LEVEL_PORTABLE
        padded = (dimension + 63) / 64 * 64
        let rowRegion = try RowRegion(reservation: reservation)
        self.rowRegion = rowRegion
        rows = rowRegion.base.bindMemory(to: Float.self, capacity: rowRegion.reserved / MemoryLayout<Float>.size)
        if prefilter {
            let region: RowRegion
            do {
                region = try RowRegion(reservation: reservation)
            } catch {
                rowRegion.release()
                throw error
            }
            codeRegion = region
            codes = region.base.bindMemory(to: UInt8.self, capacity: region.reserved)
        }
        BLASThreads.pinToOne()
    }

    deinit {
        rowRegion.release()
        codeRegion?.release()
    }

    public var count: Int { lock.withReadLock { keys.count } }

    /// The code path searches run, for logs and stats: "avx512-vnni" or "avx2" (the int8
    /// pre-filter's kernels), or "float32".
    public var kernelPath: String { kernel == .float32 ? "float32" : String(cString: vk_level_name(level)) }

    /// The path a new index takes on this CPU (`VECTOR_KERNELS` may lower it): `avx512-vnni`,
    /// `avx2` or `float32`.
    public static var defaultKernelPath: String { String(cString: vk_kernel_path()) }

    /// `VECTOR_KERNELS`' values: it caps the int8 pre-filter's path (for comparing paths on one
    /// machine); the kernels read it once, so a process checks it at start-up.
    public static let kernelNames = ["float32", "avx2", "avx512-vnni"]

    /// Bytes of vector storage in use: rows, per-row bounds, and the coded copy when there is one.
    public var vectorBytes: Int {
        lock.withReadLock { keys.count * ((dimension + 4) * MemoryLayout<Float>.size + (codes == nil ? 0 : padded)) }
    }

    // MARK: Writes

    /// Inserts new keys and replaces existing ones (a replaced key counts as newly inserted for
    /// tie-breaking). All items are validated, and room made for the new ones, before anything
    /// changes: it succeeds whole or changes nothing.
    public func upsert(_ items: [Item]) throws(VectorIndexError) {
        var seen = Set<String>()
        for item in items {
            try validate(item.vector)
            guard seen.insert(item.key).inserted else { throw .duplicateKeyInBatch(item.key) }
        }
        try lock.withWriteLock { () throws(VectorIndexError) in
            let added = items.reduce(0) { $0 + (slots[$1.key] == nil ? 1 : 0) }
            try makeRoom(rows: keys.count + added)
            for item in items { upsertLocked(item) }
        }
    }

    /// Makes room for `additional` more rows now, so that upserting that many new keys cannot
    /// fail for want of memory (the memory store reserves before it writes its log).
    public func reserve(additional: Int) throws(VectorIndexError) {
        try lock.withWriteLock { () throws(VectorIndexError) in try makeRoom(rows: keys.count + additional) }
    }

    /// Checks a vector as `upsert` would, without storing it: dimension, finite components, and a
    /// squared length float32 distances can hold.
    public func check(_ vector: [Float]) throws(VectorIndexError) {
        try validate(vector)
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
                keys[slot] = keys[last]
                sequences[slot] = sequences[last]
                attributes[slot] = attributes[last]
                slots[keys[slot]] = slot
            }
            columns.removeRow(swappingLastInto: slot)
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
            // Room was made for every new row before the batch began.
            slot = keys.count
            columns.appendRow()
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
        columns.withPointers { prepareRows(range, side: $0) }
    }

    /// The same into caller-held buffers, so disjoint ranges can be prepared in parallel.
    private func prepareRows(_ range: Range<Int>, side: RowColumns.Pointers) {
        let start = range.lowerBound
        vk_prepare_rows_at(
            level, rows + start * dimension, range.count, Int32(dimension), codes.map { $0 + start * padded },
            Int32(padded), side.norms + start, side.lengths + start, side.scales + start, side.errors + start)
    }

    /// Room for `count` rows (and their codes); the storage moves only past its reservation.
    private func makeRoom(rows count: Int) throws(VectorIndexError) {
        let used = keys.count
        let rowBytes = dimension * MemoryLayout<Float>.size
        let (bytes, overflow) = count.multipliedReportingOverflow(by: rowBytes)
        guard !overflow else { throw .outOfMemory("\(count) rows of \(dimension) floats is more than any address space") }
        defer { bindStorage() }
        try rowRegion.ensure(bytes, used: used * rowBytes)
        try codeRegion?.ensure(count * padded, used: used * padded)
    }

    /// Typed pointers into the regions (they change only when a region moves).
    private func bindStorage() {
        rows = rowRegion.base.bindMemory(to: Float.self, capacity: rowRegion.reserved / MemoryLayout<Float>.size)
        codes = codeRegion.map { $0.base.bindMemory(to: UInt8.self, capacity: $0.reserved) }
    }

    /// Takes `keys.count` rows from an open file (`length` bytes at `offset`, a multiple of the
    /// page size) as the row storage, with no copy: a private (copy-on-write) mapping at the start
    /// of the row region, read ahead so the first query faults nothing, and rows written later go
    /// right after it. Per-row bounds and the codes are computed here, in parallel, in one pass.
    /// False when the file cannot be mapped or the index is not empty (discard the index then);
    /// throws when memory for the rows cannot be had.
    public func adopt(
        rowsOf fd: Int32, offset: Int, length: Int, keys newKeys: [String], attributes newAttributes: [[String: String]]
    ) throws(VectorIndexError) -> Bool {
        try lock.withWriteLock { () throws(VectorIndexError) -> Bool in
            let count = newKeys.count
            guard length == count * dimension * MemoryLayout<Float>.size, keys.isEmpty else { return false }
            defer { bindStorage() }
            guard try rowRegion.mapFile(fd, offset: offset, length: length) else { return false }
            if let codeRegion, count * padded > codeRegion.reserved {
                // Empty: a larger reservation needs no copy.
                let larger = try RowRegion(reservation: RowRegion.growthFactor * count * padded, minimum: count * padded)
                codeRegion.release()
                self.codeRegion = larger
            }
            try makeRoom(rows: count)
            columns = RowColumns(count: count)
            let chunk = 8192
            let chunks = (count + chunk - 1) / chunk
            columns.withPointers { side in
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
            return true
        }
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

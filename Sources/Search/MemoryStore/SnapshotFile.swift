import Dispatch

#if canImport(Glibc)
import Glibc
#endif

/// A namespace's snapshot: a header (magic, version, dimension, count, generation, embedder,
/// body checksum), then page-aligned float32 rows, their norms, and the records. Written to a
/// temporary file, fsynced, renamed over the old one, directory fsynced: it is whole or absent.
struct SnapshotFile {
    static let magic: [UInt8] = Array("MEMSNP01".utf8)
    static let version: UInt32 = 1

    struct Contents {
        var dimension: Int
        var embedder: String
        var generation: UInt64
        var memories: [StoredMemory]
    }

    static func write(_ contents: Contents, to path: String, directory: String) throws(StoreError) {
        let count = contents.memories.count
        var records = ByteWriter()
        var rows = [Float]()
        rows.reserveCapacity(count * contents.dimension)
        var norms = [Float]()
        norms.reserveCapacity(count)
        for memory in contents.memories {
            rows += memory.vector
            norms.append(memory.vector.reduce(0) { $0 + $1 * $1 })
            records.record(memory)
        }
        let rowChecksum = rows.withUnsafeBytes { Checksum.ofLarge($0, seed: 0) }
        let normChecksum = norms.withUnsafeBytes { Checksum.of($0, seed: 1) }
        let recordChecksum = records.bytes.withUnsafeBytes { Checksum.of($0, seed: 2) }
        var header = ByteWriter()
        header.bytes = magic
        header.u32(version)
        header.u32(UInt32(contents.dimension))
        header.u64(UInt64(count))
        header.u64(contents.generation)
        header.string(contents.embedder)
        header.u64(rowChecksum ^ normChecksum ^ recordChecksum)
        header.u64(header.bytes.withUnsafeBytes { Checksum.of($0) })
        // Rows start on a page boundary, so they can be mapped on their own.
        while header.bytes.count % 4096 != 0 { header.u8(0) }

        let temporary = path + ".tmp"
        let fd = try FileIO.open(temporary, O_WRONLY | O_CREAT | O_TRUNC)
        do throws(StoreError) {
            try FileIO.writeAll(fd, header.bytes, path: temporary)
            try FileIO.writeAll(fd, rows, path: temporary)
            try FileIO.writeAll(fd, norms, path: temporary)
            try FileIO.writeAll(fd, records.bytes, path: temporary)
            try FileIO.fsync(fd, path: temporary)
        } catch {
            close(fd)
            unlink(temporary)
            throw error
        }
        close(fd)
        guard rename(temporary, path) == 0 else {
            let failure = StoreError.io("rename \(temporary): \(FileIO.errorText())")
            unlink(temporary)
            throw failure
        }
        try FileIO.syncDirectory(directory)
    }

    /// Only the header: the dimension and embedder a namespace was created with (nil: no snapshot).
    static func readLayout(_ path: String) throws(StoreError) -> (dimension: Int, embedder: String)? {
        let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            if errno == ENOENT { return nil }
            throw .io("open \(path): \(FileIO.errorText())")
        }
        defer { close(fd) }
        let bytes = try FileIO.read(fd, from: 0, count: 4096, path: path)
        let parsed = bytes.withUnsafeBytes { raw -> Result<(dimension: Int, embedder: String), StoreError> in
            guard raw.count >= 32, Array(raw[0..<8]) == magic else { return .failure(.corrupt("\(path) is not a snapshot (bad magic)")) }
            var reader = ByteReader(raw)
            reader.offset = 12
            return Result { () throws(StoreError) in
                let dimension = Int(try reader.u32())
                reader.offset += 16
                return (dimension, try reader.string())
            }
        }
        return try parsed.get()
    }

    /// A verified snapshot, still mapped; the index maps the rows again, into its own row region
    /// (`VectorIndex.adopt`), from `file`. The stored norms are only checksummed: the index derives
    /// its own in float64.
    struct Mapped {
        /// The open snapshot, valid while `withMapped`'s body runs.
        var file: Int32
        var dimension: Int
        var embedder: String
        var generation: UInt64
        /// Where the rows are in the file (page-aligned), for a mapping of their own.
        var rowsOffset: Int
        var rowBytes: Int
        /// Key, content, metadata and attributes of each row, in row order (vectors left empty).
        var records: [StoredMemory]
    }

    /// Verifies and maps a snapshot for the duration of `body` (nil: there is none).
    static func withMapped<T>(_ path: String, _ body: (Mapped) throws(StoreError) -> T) throws(StoreError) -> T? {
        let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            if errno == ENOENT { return nil }
            throw .io("open \(path): \(FileIO.errorText())")
        }
        defer { close(fd) }
        let size = FileIO.size(fd)
        guard size >= 64 else { throw .corrupt("\(path) is \(size) bytes, shorter than a snapshot header") }
        guard let mapped = mmap(nil, size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0), mapped != MAP_FAILED else {
            throw .io("mmap \(path): \(FileIO.errorText())")
        }
        defer { munmap(mapped, size) }
        madvise(mapped, size, MADV_SEQUENTIAL | MADV_WILLNEED)
        let raw = UnsafeRawBufferPointer(start: mapped, count: size)
        return try body(try parseMapped(raw, file: fd, path: path))
    }

    private static func parseMapped(_ raw: UnsafeRawBufferPointer, file: Int32, path: String) throws(StoreError) -> Mapped {
        var reader = ByteReader(raw)
        guard Array(raw[0..<8]) == magic else { throw .corrupt("\(path) is not a snapshot (bad magic)") }
        reader.offset = 8
        let version = try reader.u32()
        guard version == Self.version else { throw .corrupt("\(path) has snapshot version \(version); this build reads \(Self.version)") }
        let dimension = Int(try reader.u32())
        let count = Int(try reader.u64())
        let generation = try reader.u64()
        let embedder = try reader.string()
        let bodyChecksum = try reader.u64()
        let headerEnd = reader.offset
        let headerChecksum = try reader.u64()
        guard Checksum.of(UnsafeRawBufferPointer(rebasing: raw[0..<headerEnd])) == headerChecksum else {
            throw .corrupt("\(path): the header checksum does not match")
        }
        var offset = reader.offset
        while offset % 4096 != 0 { offset += 1 }
        let rowBytes = count * dimension * 4
        let normBytes = count * 4
        guard offset + rowBytes + normBytes <= raw.count else { throw .corrupt("\(path) is truncated") }
        let rows = UnsafeRawBufferPointer(rebasing: raw[offset..<offset + rowBytes])
        let norms = UnsafeRawBufferPointer(rebasing: raw[offset + rowBytes..<offset + rowBytes + normBytes])
        let records = UnsafeRawBufferPointer(rebasing: raw[(offset + rowBytes + normBytes)...])
        // The row checksum (every core) and the record parsing run side by side.
        let rowChecksum = ChecksumResult()
        let checking = DispatchGroup()
        let rowBox = UncheckedBox(rows)
        DispatchQueue.global().async(group: checking) { rowChecksum.value = Checksum.ofLarge(rowBox.value, seed: 0) }
        var recordReader = ByteReader(records)
        var memories: [StoredMemory] = []
        memories.reserveCapacity(count)
        var parseError: StoreError?
        do throws(StoreError) {
            for _ in 0..<count { memories.append(try recordReader.record()) }
        } catch {
            parseError = error
        }
        checking.wait()
        let actual = rowChecksum.value ^ Checksum.of(norms, seed: 1) ^ Checksum.of(records, seed: 2)
        guard actual == bodyChecksum else { throw .corrupt("\(path): the body checksum does not match") }
        if let parseError { throw parseError }
        return Mapped(
            file: file, dimension: dimension, embedder: embedder, generation: generation, rowsOffset: offset, rowBytes: rowBytes,
            records: memories)
    }
}

/// Written by the checksum task, read after the group wait (which orders the two).
private final class ChecksumResult: @unchecked Sendable {
    var value: UInt64 = 0
}

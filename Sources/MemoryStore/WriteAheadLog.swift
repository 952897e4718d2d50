#if canImport(Glibc)
import Glibc
#endif

/// The namespace's write-ahead log: a header (magic, generation, checksum), then records of
/// `[u32 length][u64 checksum][entry]`. Appends hold an exclusive `flock` on the namespace's lock
/// file, so processes sharing a volume never interleave; reading stops at the first record that is
/// short or fails its checksum (a torn tail).
struct WriteAheadLog {
    static let magic: [UInt8] = Array("MEMWAL01".utf8)
    static let headerSize = 24
    static let recordHeaderSize = 12

    let path: String
    let fd: Int32

    static func open(_ path: String) throws(StoreError) -> WriteAheadLog {
        WriteAheadLog(path: path, fd: try FileIO.open(path, O_RDWR | O_CREAT))
    }

    func close() { Glibc.close(fd) }

    /// The generation in the header; nil for an empty or damaged header.
    func generation() throws(StoreError) -> UInt64? {
        let header = try FileIO.read(fd, from: 0, count: Self.headerSize, path: path)
        guard header.count == Self.headerSize, Array(header[0..<8]) == Self.magic else { return nil }
        return header.withUnsafeBytes { raw -> UInt64? in
            let generation = UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
            let checksum = UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: 16, as: UInt64.self))
            return Checksum.of(UnsafeRawBufferPointer(rebasing: raw[0..<16])) == checksum ? generation : nil
        }
    }

    /// Empties the log and starts it at `generation` (after a compaction, or for a new namespace).
    func reset(generation: UInt64) throws(StoreError) {
        guard ftruncate(fd, 0) == 0 else { throw .io("truncate \(path): \(FileIO.errorText())") }
        var writer = ByteWriter()
        writer.bytes = Self.magic
        writer.u64(generation)
        writer.u64(writer.bytes.withUnsafeBytes { Checksum.of($0) })
        let written = writer.bytes.withUnsafeBytes { raw in pwrite(fd, raw.baseAddress, raw.count, 0) == raw.count }
        guard written else { throw .io("write \(path): \(FileIO.errorText())") }
        try FileIO.fsync(fd, path: path)
    }

    /// Appends records in one write and one fsync (the group commit's single disk round trip).
    func append(_ entries: [[UInt8]]) throws(StoreError) {
        var buffer: [UInt8] = []
        buffer.reserveCapacity(entries.reduce(0) { $0 + $1.count + Self.recordHeaderSize })
        for entry in entries {
            var header = ByteWriter()
            header.u32(UInt32(entry.count))
            header.u64(Checksum.of(entry))
            buffer += header.bytes
            buffer += entry
        }
        guard lseek(fd, 0, SEEK_END) >= 0 else { throw .io("seek \(path): \(FileIO.errorText())") }
        try FileIO.writeAll(fd, buffer, path: path)
        try FileIO.fsync(fd, path: path)
    }

    /// The valid records from `offset` on, and the offset just past the last one.
    func read(from offset: Int) throws(StoreError) -> (entries: [LogEntry], end: Int) {
        let size = FileIO.size(fd)
        guard size > offset else { return ([], offset) }
        let bytes = try FileIO.read(fd, from: offset, count: size - offset, path: path)
        var entries: [LogEntry] = []
        var position = 0
        bytes.withUnsafeBytes { raw in
            while position + Self.recordHeaderSize <= raw.count {
                let length = Int(UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: position, as: UInt32.self)))
                let checksum = UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: position + 4, as: UInt64.self))
                let start = position + Self.recordHeaderSize
                guard start + length <= raw.count else { return }
                let body = UnsafeRawBufferPointer(rebasing: raw[start..<start + length])
                guard Checksum.of(body) == checksum else { return }
                var reader = ByteReader(body)
                guard let entry = try? LogEntry.decode(&reader), reader.remaining == 0 else { return }
                entries.append(entry)
                position = start + length
            }
        }
        return (entries, offset + position)
    }

    /// Cuts a torn tail (a record a crash left half-written). Only under the exclusive lock.
    func truncate(at offset: Int) throws(StoreError) {
        guard FileIO.size(fd) > offset else { return }
        guard ftruncate(fd, off_t(offset)) == 0 else { throw .io("truncate \(path): \(FileIO.errorText())") }
        try FileIO.fsync(fd, path: path)
    }
}

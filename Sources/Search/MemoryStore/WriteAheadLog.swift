#if canImport(Glibc)
import Glibc
#endif

/// The namespace's write-ahead log: a header (magic, generation, checksum), then records of
/// `[u32 length][u64 checksum][entry]`. Appends hold an exclusive `flock` on the namespace's lock
/// file, so processes sharing a volume never interleave.
///
/// Reading tells a torn tail from damage. A crash can only tear the last write, so bad bytes with
/// nothing valid after them are a torn tail (cut off by whoever appends next, under the lock); a
/// bad record followed by a valid one is damage, and is reported, never cut away.
struct WriteAheadLog {
    static let magic: [UInt8] = Array("MEMWAL01".utf8)
    static let headerSize = 24
    static let recordHeaderSize = 12
    /// How far past a bad record reading looks for a valid one (a torn tail is one batch at most).
    static let resyncWindow = 4 << 20

    let path: String
    let fd: Int32

    /// What reading from an offset found.
    struct Read {
        var entries: [LogEntry]
        /// Just past the last valid record.
        var end: Int
        var tail: Tail
    }

    enum Tail: Equatable {
        /// Ends cleanly at `end`.
        case clean
        /// `bytes` bytes after `end` that a crash left half-written.
        case torn(bytes: Int)
        /// A bad record at `end` with valid records after it: the file is damaged.
        case damaged(reason: String)
    }

    static func open(_ path: String) throws(StoreError) -> WriteAheadLog {
        WriteAheadLog(path: path, fd: try FileIO.open(path, O_RDWR | O_CREAT))
    }

    func close() { Glibc.close(fd) }

    /// The generation in the header; nil for a log with no complete header yet (new, or a reset
    /// that a crash cut short). A complete header that fails its checks is damage.
    func generation() throws(StoreError) -> UInt64? {
        let header = try FileIO.read(fd, from: 0, count: Self.headerSize, path: path)
        guard header.count == Self.headerSize else { return nil }
        guard Array(header[0..<8]) == Self.magic else {
            throw .corrupt("\(path): the log header is damaged (bad magic); the file is kept as it is")
        }
        let generation = header.withUnsafeBytes { raw -> UInt64? in
            let generation = UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
            let checksum = UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: 16, as: UInt64.self))
            return Checksum.of(UnsafeRawBufferPointer(rebasing: raw[0..<16])) == checksum ? generation : nil
        }
        guard let generation else {
            throw .corrupt("\(path): the log header is damaged (checksum mismatch); the file is kept as it is")
        }
        return generation
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

    /// Appends records at `end` (the end of the valid log) in one write and one fsync (the group
    /// commit's single disk round trip). When the write or the fsync fails, the log is cut back to
    /// `end` before this returns, so a partial record can never sit before a later acknowledged
    /// one; if even that fails, the error says the namespace must stop taking writes.
    func append(_ entries: [[UInt8]], at end: Int) throws(StoreError) {
        var buffer: [UInt8] = []
        buffer.reserveCapacity(entries.reduce(0) { $0 + $1.count + Self.recordHeaderSize })
        for entry in entries {
            var header = ByteWriter()
            header.u32(UInt32(entry.count))
            header.u64(Checksum.of(entry))
            buffer += header.bytes
            buffer += entry
        }
        do throws(StoreError) {
            try FileIO.writeAll(fd, buffer, at: end, path: path)
            try FileIO.fsync(fd, path: path)
        } catch {
            guard ftruncate(fd, off_t(end)) == 0, Glibc.fsync(fd) == 0 else {
                throw .failed(
                    "\(error), and cutting the log back to its last good record failed too (\(FileIO.errorText())); "
                        + "restart the worker once the volume is healthy (start-up repairs the log)")
            }
            throw error
        }
    }

    /// The valid records from `offset` on, and what follows them.
    func read(from offset: Int) throws(StoreError) -> Read {
        let size = FileIO.size(fd)
        guard size > offset else { return Read(entries: [], end: offset, tail: .clean) }
        let bytes = try FileIO.read(fd, from: offset, count: size - offset, path: path)
        var entries: [LogEntry] = []
        var position = 0
        var failure: String?
        bytes.withUnsafeBytes { raw in
            while position < raw.count {
                switch Self.record(at: position, in: raw) {
                case .valid(let entry, let next):
                    entries.append(entry)
                    position = next
                case .invalid(let reason):
                    failure = reason
                    return
                }
            }
        }
        guard let failure else { return Read(entries: entries, end: offset + position, tail: .clean) }
        let validLater = bytes.withUnsafeBytes { raw in Self.validRecord(after: position, in: raw) }
        if let later = validLater {
            return Read(
                entries: entries, end: offset + position,
                tail: .damaged(
                    reason: "\(path) is damaged at byte \(offset + position) (\(failure)), with valid records from byte "
                        + "\(offset + later) on"))
        }
        return Read(entries: entries, end: offset + position, tail: .torn(bytes: bytes.count - position))
    }

    private enum Record {
        case valid(LogEntry, next: Int)
        case invalid(String)
    }

    private static func record(at position: Int, in raw: UnsafeRawBufferPointer) -> Record {
        guard position + recordHeaderSize <= raw.count else { return .invalid("a record header is cut short") }
        let length = Int(UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: position, as: UInt32.self)))
        let checksum = UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: position + 4, as: UInt64.self))
        let start = position + recordHeaderSize
        guard length > 0, start + length <= raw.count else { return .invalid("a record runs past the end of the file") }
        let body = UnsafeRawBufferPointer(rebasing: raw[start..<start + length])
        guard Checksum.of(body) == checksum else { return .invalid("a record fails its checksum") }
        var reader = ByteReader(body)
        guard let entry = try? LogEntry.decode(&reader), reader.remaining == 0 else {
            return .invalid("a record does not decode")
        }
        return .valid(entry, next: start + length)
    }

    /// The offset of a valid record after a bad one at `position`, looked for within the window
    /// (any offset: a damaged length field hides where the next record starts).
    private static func validRecord(after position: Int, in raw: UnsafeRawBufferPointer) -> Int? {
        var candidate = position + 1
        let limit = min(raw.count, position + resyncWindow)
        while candidate + recordHeaderSize < limit {
            let length = Int(UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: candidate, as: UInt32.self)))
            if length > 0, candidate + recordHeaderSize + length <= raw.count, case .valid = record(at: candidate, in: raw) {
                return candidate
            }
            candidate += 1
        }
        return nil
    }

    /// Cuts a torn tail (what a crash left half-written) at `offset`. Only under the exclusive lock.
    /// The cut bytes were never acknowledged, but a damaged last record cannot be told from a torn
    /// one, so they are first copied to `wal.log.torn-<offset>-<time>` for anyone who wants to look.
    /// Returns the side file's path, if one was written.
    @discardableResult
    func truncate(at offset: Int) throws(StoreError) -> String? {
        let size = FileIO.size(fd)
        guard size > offset else { return nil }
        var kept: String?
        let side = "\(path).torn-\(offset)-\(time(nil))"
        if let bytes = try? FileIO.read(fd, from: offset, count: size - offset, path: path),
            let sideFD = try? FileIO.open(side, O_WRONLY | O_CREAT | O_TRUNC)
        {
            // Best effort: the bytes were never acknowledged; a full disk must not block recovery.
            do throws(StoreError) {
                try FileIO.writeAll(sideFD, bytes, path: side)
                try FileIO.fsync(sideFD, path: side)
                kept = side
            } catch {
                unlink(side)
            }
            Glibc.close(sideFD)
        }
        guard ftruncate(fd, off_t(offset)) == 0 else { throw .io("truncate \(path): \(FileIO.errorText())") }
        try FileIO.fsync(fd, path: path)
        return kept
    }
}

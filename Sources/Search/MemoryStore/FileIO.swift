#if canImport(Glibc)
import Glibc
#endif

/// Thin checked wrappers over POSIX file calls: every failure names the file and the call.
enum FileIO {
    static func open(_ path: String, _ flags: Int32) throws(StoreError) -> Int32 {
        let fd = Glibc.open(path, flags | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw .io("open \(path): \(errorText())") }
        return fd
    }

    /// Writes all of `bytes`: at the file position, or at `offset` (pwrite) when one is given.
    static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, at offset: Int? = nil, path: String) throws(StoreError) {
        var done = 0
        while done < bytes.count {
            let start = bytes.baseAddress! + done
            let written = offset.map { pwrite(fd, start, bytes.count - done, off_t($0 + done)) } ?? Glibc.write(fd, start, bytes.count - done)
            if written < 0 {
                if errno == EINTR { continue }
                throw .io("write \(path): \(errorText())")
            }
            if written == 0 { throw .io("write \(path): no progress (0 bytes written)") }
            done += written
        }
    }

    static func writeAll<Element>(_ fd: Int32, _ array: [Element], at offset: Int? = nil, path: String) throws(StoreError) {
        let failure = array.withUnsafeBytes { raw -> StoreError? in
            do throws(StoreError) { try writeAll(fd, raw, at: offset, path: path) } catch { return error }
            return nil
        }
        if let failure { throw failure }
    }

    static func fsync(_ fd: Int32, path: String) throws(StoreError) {
        guard Glibc.fsync(fd) == 0 else { throw .io("fsync \(path): \(errorText())") }
    }

    static func size(_ fd: Int32) -> Int {
        var info = stat()
        return fstat(fd, &info) == 0 ? Int(info.st_size) : 0
    }

    /// The size of the file at `path`; nil when there is none (or it cannot be read).
    static func size(atPath path: String) -> Int? {
        var info = stat()
        return stat(path, &info) == 0 ? Int(info.st_size) : nil
    }

    static func read(_ fd: Int32, from offset: Int, count: Int, path: String) throws(StoreError) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        var done = 0
        while done < count {
            let got = bytes.withUnsafeMutableBytes { pread(fd, $0.baseAddress! + done, count - done, off_t(offset + done)) }
            if got < 0 {
                if errno == EINTR { continue }
                throw .io("read \(path): \(errorText())")
            }
            if got == 0 { break }
            done += got
        }
        return Array(bytes.prefix(done))
    }

    /// fsyncs a directory, so a rename or a new file in it survives a crash.
    static func syncDirectory(_ path: String) throws(StoreError) {
        let fd = try open(path, O_RDONLY | O_DIRECTORY)
        defer { close(fd) }
        try fsync(fd, path: path)
    }

    static func lock(_ fd: Int32, exclusive: Bool) {
        while flock(fd, exclusive ? LOCK_EX : LOCK_SH) != 0 && errno == EINTR {}
    }

    static func unlock(_ fd: Int32) { flock(fd, LOCK_UN) }

    static func errorText() -> String { String(cString: strerror(errno)) }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A whole file mapped read-only: weights are used where they lie, so loading costs no copy and
/// pages the kernel can share and drop.
final class MappedFile: @unchecked Sendable {
    let base: UnsafeRawPointer
    let count: Int

    /// Only a regular file (or a symbolic link to one) is opened: a FIFO would block the open until
    /// a writer came, a device could stream forever or do anything on open, a directory cannot be
    /// mapped. What is at `path` is looked at before opening it, and again once open (it may have
    /// been replaced in between; the open itself never waits).
    init(path: String) throws(EmbeddingModelError) {
        var status = stat()
        guard stat(path, &status) == 0 else {
            if errno == ENOENT { throw .missingFile(path) }
            throw .unreadable(path, String(cString: strerror(errno)))
        }
        if let kind = Self.irregularKind(status.st_mode) { throw .notRegularFile(path, kind) }
        let descriptor = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY)
        guard descriptor >= 0 else {
            if errno == ENOENT { throw .missingFile(path) }
            throw .unreadable(path, String(cString: strerror(errno)))
        }
        defer { close(descriptor) }
        guard fstat(descriptor, &status) == 0 else { throw .unreadable(path, String(cString: strerror(errno))) }
        if let kind = Self.irregularKind(status.st_mode) { throw .notRegularFile(path, kind) }
        count = Int(status.st_size)
        guard count > 0 else { throw .invalid(path, "the file is empty") }
        let mapped = mmap(nil, count, PROT_READ, MAP_PRIVATE, descriptor, 0)
        guard let mapped, mapped != MAP_FAILED else { throw .unreadable(path, String(cString: strerror(errno))) }
        base = UnsafeRawPointer(mapped)
    }

    /// What a file of this mode is, when it is not a regular file.
    static func irregularKind(_ mode: mode_t) -> String? {
        switch mode & S_IFMT {
        case S_IFREG: return nil
        case S_IFDIR: return "a directory"
        case S_IFIFO: return "a FIFO (named pipe)"
        case S_IFCHR: return "a character device"
        case S_IFBLK: return "a block device"
        case S_IFSOCK: return "a socket"
        default: return "a special file"
        }
    }

    /// Drops the pages read so far from memory; they are read again from the file if used.
    func release() {
        madvise(UnsafeMutableRawPointer(mutating: base), count, MADV_DONTNEED)
    }

    deinit {
        munmap(UnsafeMutableRawPointer(mutating: base), count)
    }
}

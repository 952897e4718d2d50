#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Row storage that grows in place: a large reservation of address space (inaccessible, so it costs
/// neither memory nor commit charge), made readable and writable as rows arrive. Growing therefore
/// never copies: a store that crosses a capacity boundary at a million rows would otherwise copy
/// gigabytes while a client waits for its acknowledgement. Only outgrowing the whole reservation
/// moves the rows (to one twice as large). Transparent huge pages are requested, so a scan over a
/// gigabyte of rows walks 512 times fewer page-table entries.
struct RowRegion: @unchecked Sendable {
    private(set) var base: UnsafeMutableRawPointer
    /// Bytes of address space held at `base`.
    private(set) var reserved: Int
    /// Bytes at `base` that are readable and writable (a multiple of `granule`).
    private(set) var committed = 0

    /// 64 GiB of address space by default: 40 million rows of 384 floats before any move.
    static let defaultReservation = 1 << 36
    /// Commits grow by doubling, in whole huge pages.
    static let granule = 2 << 20

    /// A region of at least `minimum` bytes' reservation (less than `reservation` when the address
    /// space is limited, e.g. by `ulimit -v`).
    init(reservation: Int = Self.defaultReservation, minimum: Int = 0) {
        let floor = Self.roundUp(max(minimum, Self.granule))
        var size = max(Self.roundUp(reservation), floor)
        while true {
            let mapped = mmap(nil, size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0)
            if let mapped, mapped != MAP_FAILED {
                base = mapped
                reserved = size
                _ = madvise(mapped, size, MADV_HUGEPAGE)
                return
            }
            guard size > floor else { fatalError("cannot reserve \(size) bytes of address space for vector rows") }
            size = max(floor, size / 2)
        }
    }

    /// Makes the first `bytes` bytes usable. Beyond the reservation the first `used` bytes move to a
    /// new region twice the size needed (rows from a mapped file are copied then).
    mutating func ensure(_ bytes: Int, used: Int) {
        guard bytes > committed else { return }
        if bytes > reserved {
            var moved = RowRegion(reservation: 2 * bytes, minimum: bytes)
            moved.ensure(bytes, used: 0)
            moved.base.copyMemory(from: base, byteCount: used)
            release()
            self = moved
            return
        }
        let target = min(reserved, Self.roundUp(max(bytes, 2 * committed)))
        guard mprotect(base + committed, target - committed, PROT_READ | PROT_WRITE) == 0 else {
            fatalError("out of memory committing \(target) bytes of vector rows: \(String(cString: strerror(errno)))")
        }
        committed = target
    }

    /// Places a private (copy-on-write) mapping of `length` bytes of an open file at the start of the
    /// region, over what was there, and makes the region usable around it. `offset` must be a
    /// multiple of the page size. The pages are read in now, so the first query faults nothing.
    mutating func mapFile(_ fd: Int32, offset: Int, length: Int) -> Bool {
        ensure(length, used: 0)
        guard length > 0 else { return true }
        guard let mapped = mmap(base, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED, fd, off_t(offset)),
            mapped != MAP_FAILED
        else { return false }
        _ = madvise(mapped, length, MADV_WILLNEED)
        // For reading only: populating a private writable mapping for writing would copy every page.
        // Kernels before 5.14 lack it; queries then fault the pages in on first touch.
        _ = madvise(mapped, length, MADV_POPULATE_READ)
        return true
    }

    func release() { munmap(base, reserved) }

    private static func roundUp(_ bytes: Int) -> Int { (bytes + granule - 1) / granule * granule }
}

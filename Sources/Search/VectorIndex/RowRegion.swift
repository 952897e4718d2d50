#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Row storage that grows in place: a reservation of address space (inaccessible, so it costs
/// neither memory nor commit charge), made readable and writable as rows arrive, so growing within
/// it never copies. The reservation is in proportion to need: 64 MiB to start (a process can hold
/// thousands of small indexes), four times the rows when a snapshot's rows are adopted, and
/// outgrowing it moves the rows once to a reservation four times larger, so moves are rare and
/// their cost is amortized. Small regions are committed in 64 KiB steps; past 32 MiB in whole
/// transparent huge pages, so a scan over a gigabyte of rows walks 512 times fewer page-table
/// entries without a small index paying 2 MiB per touched page.
struct RowRegion: @unchecked Sendable {
    private(set) var base: UnsafeMutableRawPointer
    /// Bytes of address space held at `base`.
    private(set) var reserved: Int
    /// Bytes at `base` that are readable and writable.
    private(set) var committed = 0

    static let initialReservation = 64 << 20
    static let growthFactor = 4
    static let smallStep = 64 << 10
    static let hugePage = 2 << 20
    static let hugePagesFrom = 32 << 20
    /// More than any machine's address space (x86-64 user space is 128 TiB): a request past it
    /// is refused before any arithmetic on it could overflow.
    static let maxBytes = 1 << 46

    /// A region of `reservation` bytes of address space, or less when the address space is
    /// limited (`ulimit -v`), but never less than `minimum`.
    init(reservation: Int = Self.initialReservation, minimum: Int = 0) throws(VectorIndexError) {
        guard minimum <= Self.maxBytes else { throw .outOfMemory("\(minimum) bytes of vector rows is more than any address space") }
        let reservation = min(reservation, Self.maxBytes)
        let floor = Self.roundUp(max(minimum, Self.smallStep), to: Self.smallStep)
        var size = max(Self.roundUp(reservation, to: Self.hugePage), floor)
        while true {
            let mapped = mmap(nil, size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0)
            if let mapped, mapped != MAP_FAILED {
                base = mapped
                reserved = size
                return
            }
            guard size > floor else {
                throw .outOfMemory("cannot reserve \(size) bytes of address space for vector rows: \(String(cString: strerror(errno)))")
            }
            size = max(floor, size / 2)
        }
    }

    /// Makes the first `bytes` bytes usable. Beyond the reservation the first `used` bytes move to a
    /// new region `growthFactor` times larger (rows from a mapped file are copied then).
    mutating func ensure(_ bytes: Int, used: Int) throws(VectorIndexError) {
        guard bytes > committed else { return }
        guard bytes <= Self.maxBytes else { throw .outOfMemory("\(bytes) bytes of vector rows is more than any address space") }
        if bytes > reserved {
            var moved = try RowRegion(reservation: Self.growthFactor * bytes, minimum: bytes)
            do {
                try moved.ensure(bytes, used: 0)
            } catch {
                moved.release()
                throw error
            }
            moved.base.copyMemory(from: base, byteCount: used)
            release()
            self = moved
            return
        }
        let step = committed >= Self.hugePagesFrom ? Self.hugePage : Self.smallStep
        let target = min(reserved, Self.roundUp(max(bytes, 2 * committed), to: step))
        guard mprotect(base + committed, target - committed, PROT_READ | PROT_WRITE) == 0 else {
            throw .outOfMemory("cannot commit \(target) bytes of memory for vector rows: \(String(cString: strerror(errno)))")
        }
        if target >= Self.hugePagesFrom { _ = madvise(base, target, MADV_HUGEPAGE) }
        committed = target
    }

    /// Places a private (copy-on-write) mapping of `length` bytes of an open file at the start of
    /// the region, over what was there, and makes the region usable around it; an empty region
    /// first grows its reservation to `growthFactor` times the file's rows. `offset` must be a
    /// multiple of the page size. The pages are read in now, so the first query faults nothing.
    mutating func mapFile(_ fd: Int32, offset: Int, length: Int) throws(VectorIndexError) -> Bool {
        guard length <= Self.maxBytes else { throw .outOfMemory("\(length) bytes of vector rows is more than any address space") }
        if length > reserved {
            let larger = try RowRegion(reservation: Self.growthFactor * length, minimum: length)
            release()
            self = larger
        }
        try ensure(length, used: 0)
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

    private static func roundUp(_ bytes: Int, to step: Int) -> Int { (bytes + step - 1) / step * step }
}

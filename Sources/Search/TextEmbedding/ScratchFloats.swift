#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A forward pass's working memory (activations, up to ~110 MB for 32 texts of 256 tokens), in a
/// mapping of its own that is returned to the kernel when the pass ends. From malloc, the first
/// large free raises glibc's mmap threshold, later buffers come from its heap, and a worker's
/// resident memory stays at the largest batch's peak long after it. Zero-filled, as mappings are.
final class ScratchFloats {
    let pointer: UnsafeMutablePointer<Float>
    private let bytes: Int
    private let mapped: Bool

    init(count: Int) {
        bytes = max(1, count) * MemoryLayout<Float>.stride
        // Small buffers are not worth a mapping (and the heap reuses them well).
        if bytes >= 1 << 20, let region = mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
            region != MAP_FAILED
        {
            #if canImport(Glibc)
            // Huge pages where the system allows them on request: far fewer faults per pass.
            _ = madvise(region, bytes, MADV_HUGEPAGE)
            #endif
            pointer = region.bindMemory(to: Float.self, capacity: bytes / MemoryLayout<Float>.stride)
            mapped = true
        } else {
            pointer = .allocate(capacity: max(1, count))
            pointer.initialize(repeating: 0, count: max(1, count))
            mapped = false
        }
    }

    deinit {
        if mapped {
            munmap(UnsafeMutableRawPointer(pointer), bytes)
        } else {
            pointer.deallocate()
        }
    }
}

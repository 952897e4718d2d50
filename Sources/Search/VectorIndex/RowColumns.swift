import CVectorKernels

/// What the kernels read beside each row, one column per value (a kernel loads 16 rows of a column
/// at once): squared norm (float64 sum, rounded), norm rounded up, and, for the prefilter kernel,
/// the code scale and coding error. In row order; rows move and go together with them.
struct RowColumns {
    private(set) var norms: [Float]
    private(set) var lengths: [Float]
    private(set) var scales: [Float]
    private(set) var errors: [Float]

    /// `count` rows whose values are still to be computed.
    init(count: Int = 0) {
        norms = [Float](repeating: 0, count: count)
        (lengths, scales, errors) = (norms, norms, norms)
    }

    mutating func appendRow() {
        norms.append(0)
        lengths.append(0)
        scales.append(0)
        errors.append(0)
    }

    /// A delete: the last row's values move into `slot` and the last row goes.
    mutating func removeRow(swappingLastInto slot: Int) {
        let last = norms.count - 1
        if slot != last {
            norms[slot] = norms[last]
            lengths[slot] = lengths[last]
            scales[slot] = scales[last]
            errors[slot] = errors[last]
        }
        norms.removeLast()
        lengths.removeLast()
        scales.removeLast()
        errors.removeLast()
    }

    /// The columns as writable pointers (the caller holds the write lock).
    struct Pointers: @unchecked Sendable {
        var norms, lengths, scales, errors: UnsafeMutablePointer<Float>
    }

    mutating func withPointers<Result>(_ body: (Pointers) -> Result) -> Result {
        norms.withUnsafeMutableBufferPointer { norms in
            lengths.withUnsafeMutableBufferPointer { lengths in
                scales.withUnsafeMutableBufferPointer { scales in
                    errors.withUnsafeMutableBufferPointer { errors in
                        body(Pointers(
                            norms: norms.baseAddress!, lengths: lengths.baseAddress!, scales: scales.baseAddress!,
                            errors: errors.baseAddress!))
                    }
                }
            }
        }
    }

    /// The kernels' view of the rows with `codes`: read-only, so concurrent searches may share it.
    func withKernelRows<Result>(codes: UnsafePointer<UInt8>?, _ body: (vk_rows) -> Result) -> Result {
        norms.withUnsafeBufferPointer { norms in
            lengths.withUnsafeBufferPointer { lengths in
                scales.withUnsafeBufferPointer { scales in
                    errors.withUnsafeBufferPointer { errors in
                        body(vk_rows(
                            codes: codes, norms: norms.baseAddress, lengths: lengths.baseAddress, scales: scales.baseAddress,
                            errors: errors.baseAddress))
                    }
                }
            }
        }
    }
}

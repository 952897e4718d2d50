import CVectorKernels
import Testing
import TestSupport

@testable import VectorIndex

/// Rows coded for the kernels, as VectorIndex keeps them, by the coder of `level`.
struct CodedRows {
    let codes: AlignedBuffer<UInt8>
    var columns: RowColumns

    init(_ rows: [[Float]], dimension: Int, level: Int32 = vk_int8_level()) {
        let padded = (dimension + 63) / 64 * 64
        codes = AlignedBuffer<UInt8>(count: rows.count * padded)
        columns = RowColumns(count: rows.count)
        let flat = Array(rows.joined())
        columns.withPointers { [codes] side in
            vk_prepare_rows_at(
                level, flat, rows.count, Int32(dimension), codes.pointer, Int32(padded), side.norms, side.lengths,
                side.scales, side.errors)
        }
    }

    func withRows<Result>(_ body: (vk_rows) -> Result) -> Result {
        columns.withKernelRows(codes: codes.pointer, body)
    }
}

/// The pre-filter is only exact if every bound it reports holds: the true (float64) squared
/// distance of every row must lie between its lower and upper bound, at any scale. At the default
/// level (the portable one where the CPU has none); `KernelLevelTests` holds every other level
/// to the same bits.
@Suite("int8 pre-filter bounds", .tags(.heavy), .pass(.heavy))
struct PrefilterBoundsTests {
    /// Row sets that stress the coding: uniform scales from subnormal-adjacent to near the size
    /// limit, rows of wildly different magnitudes, one dominant component (everything else codes
    /// to zero), constant, zero and subnormal rows.
    static func rows(_ shape: String, count: Int, dimension: Int, rng: inout SplitMix64) -> [[Float]] {
        func uniform(_ scale: Float) -> [Float] {
            (0..<dimension).map { _ in Float.random(in: -1...1, using: &rng) * scale }
        }
        switch shape {
        case "tiny": return (0..<count).map { _ in uniform(1e-30) }
        case "huge": return (0..<count).map { _ in uniform(1e16) }
        case "mixed":
            return (0..<count).map { _ in
                uniform([1e-20, 1e-3, 1, 1e5, 1e15].randomElement(using: &rng)!)
            }
        case "spiky":
            return (0..<count).map { _ in
                var row = uniform(1e-3)
                row[Int.random(in: 0..<dimension, using: &rng)] = Float.random(in: 10...100, using: &rng)
                return row
            }
        default:
            return (0..<count).map { index in
                switch index % 4 {
                case 0: [Float](repeating: 0, count: dimension)
                case 1: [Float](repeating: 0.5, count: dimension)
                case 2:
                    (0..<dimension).map { _ in
                        Float.leastNonzeroMagnitude * Float(Int.random(in: -9...9, using: &rng))
                    }
                default: uniform(1)
                }
            }
        }
    }

    static func distance(_ a: [Float], _ b: [Float]) -> Double {
        zip(a, b).reduce(0) { $0 + (Double($1.0) - Double($1.1)) * (Double($1.0) - Double($1.1)) }
    }

    @Test(
        "every row's float64 distance lies within its bounds, single and batch kernels",
        arguments: ["tiny", "huge", "mixed", "spiky", "degenerate"], [3, 100, 384])
    func boundsHold(shape: String, dimension: Int) {
        var rng = SplitMix64(state: UInt64(dimension) &* 7919 &+ UInt64(shape.utf8.count))
        let count = 301  // not a multiple of 16 or 12: the kernels' tails run too
        let rows = Self.rows(shape, count: count, dimension: dimension, rng: &rng)
        let queries =
            Self.rows(shape, count: 5, dimension: dimension, rng: &rng)
            + Self.rows("mixed", count: 5, dimension: dimension, rng: &rng)
        let padded = (dimension + 63) / 64 * 64

        let prepared = CodedRows(rows, dimension: dimension)
        let coded = AlignedBuffer<Int8>(count: 32 * padded)
        var bounds = [vk_query](repeating: vk_query(), count: 32)
        for (lane, query) in queries.enumerated() {
            bounds[lane] = vk_prepare_query(
                query, Int32(dimension), Int32(padded), coded.pointer + lane * padded)
        }
        let packed = AlignedBuffer<Int32>(count: padded / 4 * 32)
        vk_pack_group(coded.pointer, Int32(queries.count), Int32(padded), packed.pointer)
        let found = AlignedBuffer<vk_candidate>(count: 32 * count)

        prepared.withRows { side in
            for (lane, query) in queries.enumerated() {
                let reported = vk_scan_one(
                    side, count, Int32(padded), coded.pointer + lane * padded, bounds[lane], .infinity,
                    found.pointer)
                #expect(reported == count, "single scan with tau = infinity reports every row")
                for entry in UnsafeBufferPointer(start: found.pointer, count: reported) {
                    let exact = Self.distance(rows[Int(entry.row)], query)
                    #expect(
                        Double(entry.lower) <= exact && exact <= Double(entry.upper),
                        "row \(entry.row): \(entry.lower) <= \(exact) <= \(entry.upper)")
                }
            }
            let tau = (0..<32).map { $0 < queries.count ? Float.infinity : -.infinity }
            let reported = vk_scan_group(
                side, count, Int32(padded), packed.pointer, bounds, tau, found.pointer)
            #expect(
                reported == count * queries.count,
                "batch scan reports every (row, query) pair and no empty lane")
            for entry in UnsafeBufferPointer(start: found.pointer, count: reported) {
                let exact = Self.distance(rows[Int(entry.row)], queries[Int(entry.lane)])
                #expect(
                    Double(entry.lower) <= exact && exact <= Double(entry.upper),
                    "row \(entry.row) lane \(entry.lane): \(entry.lower) <= \(exact) <= \(entry.upper)")
            }
        }
    }

    @Test("on ordinary data the bounds are tight enough to discard almost every row")
    func selective() {
        var rng = SplitMix64(state: 5)
        let dimension = 384
        let count = 4000
        let rows = (0..<count).map { _ in
            (0..<dimension).map { _ in Float.random(in: -1...1, using: &rng) }
        }
        let query = (0..<dimension).map { _ in Float.random(in: -1...1, using: &rng) }
        let padded = dimension
        let prepared = CodedRows(rows, dimension: dimension)
        let coded = AlignedBuffer<Int8>(count: padded)
        let bounds = vk_prepare_query(query, Int32(dimension), Int32(padded), coded.pointer)
        let found = AlignedBuffer<vk_candidate>(count: count)
        // The 10th smallest true distance as the threshold: a useful filter reports few more rows.
        let tenth = rows.map { Self.distance($0, query) }.sorted()[9]
        let reported = prepared.withRows {
            vk_scan_one($0, count, Int32(padded), coded.pointer, bounds, Float(tenth), found.pointer)
        }
        #expect(reported >= 10)
        #expect(reported < count / 20, "reported \(reported) of \(count) rows")
    }
}

import CVectorKernels
import Testing
import TestSupport

@testable import VectorIndex

/// A candidate as a kernel reports it, its bounds compared bit for bit.
struct Reported: Equatable, CustomStringConvertible {
    let row: UInt32
    let lane: UInt32
    let lower: UInt32
    let upper: UInt32

    init(_ candidate: vk_candidate) {
        row = candidate.row
        lane = candidate.lane
        lower = candidate.lower.bitPattern
        upper = candidate.upper.bitPattern
    }

    var description: String { "(\(row), \(lane): \(Float(bitPattern: lower))...\(Float(bitPattern: upper)))" }
}

/// Dimensions off the kernels' widths (32 and 64 codes), up to many 64-code steps.
let levelDimensions = [3, 17, 100, 384, 1000]
let levelShapes = ["tiny", "huge", "mixed", "spiky", "degenerate"]
/// Dimension and rows of the index tests; 9001 rows make two shards.
let levelIndexShapes: [(dimension: Int, count: Int)] = [(3, 2001), (100, 3001), (40, 9001)]

/// Every SIMD level against the portable C reference: the same codes, and the same candidates
/// with the same bounds, bit for bit (the same integer dot products in the same float formula),
/// every bound holding; and an index at each level answers as the float64 reference and the
/// float32 kernel do. A level this CPU lacks is skipped by name, never passed.
@Suite("int8 kernel levels", .tags(.heavy), .pass(.heavy))
struct KernelLevelTests {
    @Test(
        "AVX2: codes, candidates and bounds equal the portable reference's",
        .enabled(if: vk_cpu_level() >= VK_LEVEL_AVX2, "this CPU has no AVX2 with FMA"),
        arguments: levelShapes, levelDimensions)
    func avx2Kernels(shape: String, dimension: Int) {
        Self.compareKernels(level: VK_LEVEL_AVX2, shape: shape, dimension: dimension)
    }

    @Test(
        "AVX512-VNNI: codes, candidates and bounds equal the portable reference's",
        .enabled(if: vk_cpu_level() >= VK_LEVEL_AVX512_VNNI, "this CPU has no AVX512-VNNI"),
        arguments: levelShapes, levelDimensions)
    func avx512Kernels(shape: String, dimension: Int) {
        Self.compareKernels(level: VK_LEVEL_AVX512_VNNI, shape: shape, dimension: dimension)
    }

    @Test(
        "AVX2: an index answers as the float64 reference and the float32 kernel, single and batch",
        .enabled(if: vk_cpu_level() >= VK_LEVEL_AVX2, "this CPU has no AVX2 with FMA"), arguments: levelIndexShapes)
    func avx2Index(shape: (dimension: Int, count: Int)) throws {
        try Self.compareIndex(level: VK_LEVEL_AVX2, dimension: shape.dimension, count: shape.count)
    }

    @Test(
        "AVX512-VNNI: an index answers as the float64 reference and the float32 kernel, single and batch",
        .enabled(if: vk_cpu_level() >= VK_LEVEL_AVX512_VNNI, "this CPU has no AVX512-VNNI"), arguments: levelIndexShapes)
    func avx512Index(shape: (dimension: Int, count: Int)) throws {
        try Self.compareIndex(level: VK_LEVEL_AVX512_VNNI, dimension: shape.dimension, count: shape.count)
    }

    @Test("an x86-64 host runs an int8 level, so the tests above did not all skip; the path is reported")
    func someLevelRuns() throws {
        #if arch(x86_64)
        #expect(vk_cpu_level() >= VK_LEVEL_AVX2, "no AVX2 with FMA: every level test above was skipped")
        #endif
        let path = String(cString: vk_kernel_path())
        #expect(path == (vk_int8_available() ? String(cString: vk_level_name(vk_int8_level())) : "float32"))
        #expect(try VectorIndex(dimension: 8).kernelPath == path)
        #expect(try VectorIndex(dimension: 8, kernel: .float32).kernelPath == "float32")
        // A level above the CPU's is lowered to its own, never run.
        let highest = try VectorIndex(
            dimension: 8, shards: nil, kernel: .int8Prefilter, reservation: RowRegion.initialReservation,
            level: VK_LEVEL_AVX512_VNNI + 1)
        #expect(highest.level == vk_cpu_level())
    }

    static func compareKernels(level: Int32, shape: String, dimension: Int) {
        var rng = SplitMix64(state: UInt64(dimension) &* 104_729 &+ UInt64(shape.utf8.count))
        let count = 301  // odd, and not a multiple of 8, 12 or 16: every kernel's tail runs
        let rows = PrefilterBoundsTests.rows(shape, count: count, dimension: dimension, rng: &rng)
        let queries =
            PrefilterBoundsTests.rows(shape, count: 5, dimension: dimension, rng: &rng)
            + PrefilterBoundsTests.rows("mixed", count: 5, dimension: dimension, rng: &rng)
        let padded = (dimension + 63) / 64 * 64
        let reference = CodedRows(rows, dimension: dimension, level: VK_LEVEL_PORTABLE)
        let coded = CodedRows(rows, dimension: dimension, level: level)
        let codeBytes = count * padded
        #expect(
            UnsafeBufferPointer(start: coded.codes.pointer, count: codeBytes)
                .elementsEqual(UnsafeBufferPointer(start: reference.codes.pointer, count: codeBytes)), "codes")
        #expect(coded.columns.scales == reference.columns.scales, "scales")

        let codedQueries = AlignedBuffer<Int8>(count: 32 * padded)
        var bounds = [vk_query](repeating: vk_query(), count: 32)
        for (lane, query) in queries.enumerated() {
            bounds[lane] = vk_prepare_query(query, Int32(dimension), Int32(padded), codedQueries.pointer + lane * padded)
        }
        let packed = AlignedBuffer<Int32>(count: padded / 4 * 32)
        vk_pack_group(codedQueries.pointer, Int32(queries.count), Int32(padded), packed.pointer)
        let exact = rows.map { row in queries.map { PrefilterBoundsTests.distance(row, $0) } }
        // Every row, then about half of them (each query's median distance as the threshold).
        let medians = queries.indices.map { lane in Float(exact.map { $0[lane] }.sorted()[count / 2]) }
        for limits in [[Float](repeating: .infinity, count: queries.count), medians] {
            let tau = (0..<32).map { $0 < queries.count ? limits[$0] : -.infinity }
            for lane in queries.indices {
                let query = codedQueries.pointer + lane * padded
                let want = scanOne(VK_LEVEL_PORTABLE, reference, count, padded, query, bounds[lane], tau[lane])
                let got = scanOne(level, reference, count, padded, query, bounds[lane], tau[lane])
                expectSame(got, want, "single, query \(lane), tau \(tau[lane])")
                if tau[lane] == .infinity { #expect(got.count == count, "tau = infinity reports every row") }
                expectBoundsHold(got, exact, lane: lane)
                // The level's own coder: other float64 sums (norms, errors), bounds as rigorous.
                expectBoundsHold(scanOne(level, coded, count, padded, query, bounds[lane], tau[lane]), exact, lane: lane)
            }
            let want = scanGroup(VK_LEVEL_PORTABLE, reference, count, padded, packed.pointer, bounds, tau)
            let got = scanGroup(level, reference, count, padded, packed.pointer, bounds, tau)
            expectSame(got, want, "group, tau \(limits[0])...")
            #expect(got.allSatisfy { Int($0.lane) < queries.count }, "an empty lane reported a row")
            expectBoundsHold(got, exact)
        }
    }

    static func scanOne(
        _ level: Int32, _ rows: CodedRows, _ count: Int, _ padded: Int, _ query: UnsafePointer<Int8>, _ bounds: vk_query,
        _ tau: Float
    ) -> [Reported] {
        let found = AlignedBuffer<vk_candidate>(count: count)
        let reported = rows.withRows { vk_scan_one_at(level, $0, count, Int32(padded), query, bounds, tau, found.pointer) }
        return UnsafeBufferPointer(start: found.pointer, count: reported).map(Reported.init)
    }

    static func scanGroup(
        _ level: Int32, _ rows: CodedRows, _ count: Int, _ padded: Int, _ packed: UnsafePointer<Int32>,
        _ bounds: [vk_query], _ tau: [Float]
    ) -> [Reported] {
        let found = AlignedBuffer<vk_candidate>(count: 32 * count)
        let reported = rows.withRows {
            vk_scan_group_at(level, $0, count, Int32(padded), packed, bounds, tau, found.pointer)
        }
        return UnsafeBufferPointer(start: found.pointer, count: reported).map(Reported.init)
    }

    static func expectSame(
        _ got: [Reported], _ want: [Reported], _ what: String, sourceLocation: SourceLocation = #_sourceLocation
    ) {
        #expect(
            got.count == want.count, "\(what): \(got.count) reported, the reference \(want.count)",
            sourceLocation: sourceLocation)
        if let first = zip(got, want).enumerated().first(where: { $0.element.0 != $0.element.1 })?.offset {
            Issue.record(
                "\(what): first difference at \(first): \(got[first]), the reference \(want[first])",
                sourceLocation: sourceLocation)
        }
    }

    /// exact[row][query]: the float64 squared distance.
    /// `lane`: the query a single scan ran for (single scans report lane 0); nil for group scans.
    static func expectBoundsHold(
        _ reported: [Reported], _ exact: [[Double]], lane: Int? = nil, sourceLocation: SourceLocation = #_sourceLocation
    ) {
        for entry in reported {
            let distance = exact[Int(entry.row)][lane ?? Int(entry.lane)]
            let lower = Double(Float(bitPattern: entry.lower))
            let upper = Double(Float(bitPattern: entry.upper))
            guard lower <= distance && distance <= upper else {
                Issue.record("\(entry) does not hold \(distance)", sourceLocation: sourceLocation)
                return
            }
        }
    }

    static func compareIndex(level: Int32, dimension: Int, count: Int) throws {
        let rows = keyedRandomRows(count, dimension, seed: UInt64(count))
        let items = rows.map { VectorIndex.Item(key: $0.key, vector: $0.vector) }
        let index = try VectorIndex(
            dimension: dimension, shards: 4, kernel: .int8Prefilter, reservation: RowRegion.initialReservation, level: level)
        #expect(index.kernel == .int8Prefilter)
        #expect(index.level == level)
        #expect(index.kernelPath == String(cString: vk_level_name(level)))
        let float32 = try VectorIndex(dimension: dimension, shards: 4, kernel: .float32)
        try index.upsert(items)
        try float32.upsert(items)
        // 33 queries: two groups of the batch kernel, the second with one lane.
        let queries = randomVectors(33, dimension, seed: UInt64(dimension))
        let references = queries.map { reference(rows, $0, k: 100) }
        for k in [1, 10, 100] {
            let batch = try index.search(batch: queries, k: k)
            let batch32 = try float32.search(batch: queries, k: k)
            for (offset, query) in queries.enumerated() {
                let expected = Array(references[offset].prefix(k))
                let single = try index.search(query, k: k)
                // The float64 re-rank decides: no float32 near-tie exception.
                #expect(single.map(\.key) == expected.map(\.key), "query \(offset), k \(k)")
                #expect(batch[offset] == single, "query \(offset), k \(k)")
                expectMatchesReference(single, expected)
                expectMatchesReference(try float32.search(query, k: k), expected)
                expectMatchesReference(batch32[offset], expected)
            }
        }
    }
}

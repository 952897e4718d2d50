import Dispatch
import Testing
import TestSupport

import CVectorKernels
@testable import VectorIndex

/// Deterministic test data.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

func randomVectors(_ count: Int, _ dimension: Int, seed: UInt64) -> [[Float]] {
    var rng = SplitMix64(state: seed)
    return (0..<count).map { _ in (0..<dimension).map { _ in Float.random(in: -1...1, using: &rng) } }
}

/// Random rows keyed "k0", "k1", … in insertion order.
func keyedRandomRows(_ count: Int, _ dimension: Int, seed: UInt64) -> [(key: String, vector: [Float])] {
    randomVectors(count, dimension, seed: seed).enumerated().map { (key: "k\($0.offset)", vector: $0.element) }
}

/// An index of `kernel` holding `count` keyed random rows, and the rows.
func indexOfRandomRows(
    _ count: Int, _ dimension: Int, seed: UInt64, kernel: VectorIndex.Kernel
) throws -> (index: VectorIndex, rows: [(key: String, vector: [Float])]) {
    let index = try VectorIndex(dimension: dimension, kernel: kernel)
    let rows = keyedRandomRows(count, dimension, seed: seed)
    try index.upsert(rows.map { .init(key: $0.key, vector: $0.vector) })
    return (index, rows)
}

/// The float64 brute-force reference: keys nearest first, ties by insertion order.
func reference(_ rows: [(key: String, vector: [Float])], _ query: [Float], k: Int) -> [(key: String, distance: Double)] {
    let scored = rows.enumerated().map { index, row -> (key: String, distance: Double, order: Int) in
        var sum = 0.0
        for (a, b) in zip(row.vector, query) { sum += (Double(a) - Double(b)) * (Double(a) - Double(b)) }
        return (row.key, sum, index)
    }
    return scored.sorted { ($0.distance, $0.order) < ($1.distance, $1.order) }.prefix(k).map { ($0.key, $0.distance) }
}

/// Ids must equal the reference's, except where float32 cannot tell two distances apart.
func expectMatchesReference(
    _ got: [VectorIndex.Match], _ expected: [(key: String, distance: Double)], sourceLocation: SourceLocation = #_sourceLocation
) {
    #expect(got.count == expected.count, sourceLocation: sourceLocation)
    let referenceDistance = Dictionary(expected.map { ($0.key, $0.distance) }, uniquingKeysWith: { a, _ in a })
    for (index, (match, want)) in zip(got, expected).enumerated() {
        let tolerance = 1e-4 * (1 + want.distance)
        #expect(abs(Double(match.distance) - want.distance) <= tolerance, "distance at \(index)", sourceLocation: sourceLocation)
        if match.key != want.key {
            // A near-tie: the swapped key must be as close as the expected one.
            let other = referenceDistance[match.key] ?? .infinity
            #expect(abs(other - want.distance) <= tolerance, "id at \(index): \(match.key) vs \(want.key)", sourceLocation: sourceLocation)
        }
    }
}

/// Both scoring kernels; `.int8Prefilter` falls back to float32 on CPUs without AVX2 or AVX512-VNNI
/// (`KernelLevelTests` runs each int8 level the CPU has).
let kernels: [VectorIndex.Kernel] = [.float32, .int8Prefilter]

@Suite("VectorIndex exactness", .tags(.heavy), .pass(.heavy))
struct VectorIndexTests {
    @Test(
        "single and batch search equal the float64 reference",
        arguments: kernels, [(3, 500), (17, 10_000), (64, 3000), (384, 9000)])
    func exactness(kernel: VectorIndex.Kernel, shape: (dimension: Int, count: Int)) throws {
        let (dimension, count) = shape
        let (index, rows) = try indexOfRandomRows(count, dimension, seed: UInt64(dimension), kernel: kernel)
        #expect(index.count == count)
        let queries = randomVectors(12, dimension, seed: 99)
        for k in [1, 10, 100] {
            let batch = try index.search(batch: queries, k: k)
            for (query, batchResult) in zip(queries, batch) {
                let expected = reference(rows, query, k: k)
                expectMatchesReference(try index.search(query, k: k), expected)
                expectMatchesReference(batchResult, expected)
            }
        }
    }

    @Test("identical vectors tie by insertion order, not by slot, and distances are never negative", arguments: kernels)
    func ties(kernel: VectorIndex.Kernel) throws {
        let index = try VectorIndex(dimension: 4, kernel: kernel)
        let same: [Float] = [100, -200, 300, 0.5]
        try index.upsert(["a", "b", "c", "d"].map { .init(key: $0, vector: same) })
        try index.upsert(.init(key: "far", vector: [0, 0, 0, 0]))
        #expect(try index.search(same, k: 4).map(\.key) == ["a", "b", "c", "d"])
        #expect(try index.search(same, k: 4).allSatisfy { $0.distance == 0 })
        // Deleting "a" moves the last row ("far") into slot 0; re-inserting "a" puts it last in order.
        #expect(index.delete("a"))
        try index.upsert(.init(key: "a", vector: same))
        #expect(try index.search(same, k: 5).map(\.key) == ["b", "c", "d", "a", "far"])
        #expect(try index.search(batch: [same], k: 5)[0].map(\.key) == ["b", "c", "d", "a", "far"])
    }

    @Test("deletes swap the last row in; results match the reference over what remains", arguments: kernels)
    func deletes(kernel: VectorIndex.Kernel) throws {
        let dimension = 24
        var (index, rows) = try indexOfRandomRows(6000, dimension, seed: 7, kernel: kernel)
        var rng = SplitMix64(state: 3)
        for _ in 0..<2500 {
            let victim = rows.remove(at: Int.random(in: 0..<rows.count, using: &rng))
            #expect(index.delete(victim.key))
            #expect(!index.delete(victim.key))
            #expect(index.get(victim.key) == nil)
        }
        #expect(index.count == rows.count)
        #expect(index.get(rows[10].key)?.vector == rows[10].vector)
        for query in randomVectors(8, dimension, seed: 11) {
            expectMatchesReference(try index.search(query, k: 20), reference(rows, query, k: 20))
        }
    }

    @Test("fewer rows than k give fewer results, no sentinels; an empty index gives none", arguments: kernels)
    func fewerThanK(kernel: VectorIndex.Kernel) throws {
        let index = try VectorIndex(dimension: 2, kernel: kernel)
        #expect(try index.search([0, 0], k: 5).isEmpty)
        #expect(try index.search(batch: [[0, 0]], k: 5) == [[]])
        try index.upsert([.init(key: "x", vector: [1, 0]), .init(key: "y", vector: [0, 2])])
        let result = try index.search([0, 0], k: 10)
        #expect(result == [.init(key: "x", distance: 1), .init(key: "y", distance: 4)])
    }

    @Test("an equality filter keeps only matching rows, applied before the top-k", arguments: kernels)
    func filters(kernel: VectorIndex.Kernel) throws {
        let dimension = 16
        let index = try VectorIndex(dimension: dimension, kernel: kernel)
        let vectors = randomVectors(9000, dimension, seed: 5)
        var rows: [(key: String, vector: [Float], color: String)] = []
        for (offset, vector) in vectors.enumerated() {
            rows.append(("k\(offset)", vector, offset % 3 == 0 ? "red" : "blue"))
        }
        try index.upsert(rows.map { .init(key: $0.key, vector: $0.vector, attributes: ["color": $0.color, "n": "1"]) })
        let reds = rows.filter { $0.color == "red" }.map { (key: $0.key, vector: $0.vector) }
        for query in randomVectors(6, dimension, seed: 8) {
            let expected = reference(reds, query, k: 15)
            expectMatchesReference(try index.search(query, k: 15, filter: ["color": "red"]), expected)
            expectMatchesReference(try index.search(batch: [query], k: 15, filter: ["color": "red", "n": "1"])[0], expected)
            #expect(try index.search(query, k: 5, filter: ["color": "green"]).isEmpty)
        }
    }

    @Test("bad vectors and k are refused, and a bad batch writes nothing")
    func validation() throws {
        let index = try VectorIndex(dimension: 3)
        #expect(throws: VectorIndexError.wrongDimension(expected: 3, got: 2)) { try index.upsert(.init(key: "a", vector: [1, 2])) }
        #expect(throws: VectorIndexError.notFinite(index: 1)) { try index.upsert(.init(key: "a", vector: [1, .nan, 2])) }
        #expect(throws: VectorIndexError.badK(0)) { try index.search([1, 2, 3], k: 0) }
        #expect(throws: VectorIndexError.notFinite(index: 2)) { try index.search([1, 2, .infinity], k: 1) }
        #expect(throws: VectorIndexError.self) {
            try index.upsert([.init(key: "ok", vector: [1, 2, 3]), .init(key: "bad", vector: [1, 2, .infinity])])
        }
        #expect(throws: VectorIndexError.duplicateKeyInBatch("x")) {
            try index.upsert([.init(key: "x", vector: [1, 2, 3]), .init(key: "x", vector: [3, 2, 1])])
        }
        #expect(throws: VectorIndexError.tooLarge) { try index.upsert(.init(key: "huge", vector: [1e19, 0, 0])) }
        #expect(throws: VectorIndexError.tooLarge) { try index.search([0, 3e18, 3e18], k: 1) }
        #expect(index.count == 0)
        #expect(throws: VectorIndexError.badDimension(0)) { try VectorIndex(dimension: 0) }
    }

    @Test("an upsert replaces the vector and attributes of an existing key", arguments: kernels)
    func upsertReplaces(kernel: VectorIndex.Kernel) throws {
        let index = try VectorIndex(dimension: 2, kernel: kernel)
        try index.upsert(.init(key: "a", vector: [0, 0], attributes: ["v": "1"]))
        try index.upsert(.init(key: "a", vector: [5, 5], attributes: ["v": "2"]))
        #expect(index.count == 1)
        #expect(index.get("a")?.vector == [5, 5])
        #expect(index.get("a")?.attributes == ["v": "2"])
        #expect(try index.search([5, 5], k: 1) == [.init(key: "a", distance: 0)])
    }

    @Test("readers search while a writer inserts and deletes", arguments: kernels)
    func concurrentReaders(kernel: VectorIndex.Kernel) async throws {
        let dimension = 32
        let index = try VectorIndex(dimension: dimension, kernel: kernel)
        try index.upsert(randomVectors(5000, dimension, seed: 1).enumerated().map { .init(key: "base\($0.offset)", vector: $0.element) })
        let queries = randomVectors(4, dimension, seed: 2)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                for (offset, vector) in randomVectors(3000, dimension, seed: 3).enumerated() {
                    try index.upsert(.init(key: "new\(offset)", vector: vector))
                    if offset % 2 == 0 { index.delete("base\(offset)") }
                }
            }
            for _ in 0..<3 {
                group.addTask {
                    for round in 0..<40 {
                        let result = try index.search(queries[round % 4], k: 10)
                        #expect(result.count == 10)
                        #expect(zip(result, result.dropFirst()).allSatisfy { $0.distance <= $1.distance })
                    }
                }
            }
            try await group.waitForAll()
        }
        #expect(index.count == 5000 + 3000 - 1500)
    }

    @Test(
        "the int8 pre-filter orders distances far closer than 8-bit codes can tell apart, exactly as float64 does",
        .enabled(if: vk_int8_available()), arguments: [1e-3, 1.0, 1e4] as [Float])
    func prefilterNearTies(scale: Float) throws {
        let dimension = 96
        let index = try VectorIndex(dimension: dimension, kernel: .int8Prefilter)
        #expect(index.kernel == .int8Prefilter)
        var rng = SplitMix64(state: 21)
        let base = (0..<dimension).map { _ in Float.random(in: -1...1, using: &rng) * scale }
        // 3000 rows within 1e-4 (relative) of one point: a code step is 1/127 of the largest
        // component, so every bound overlaps every other and the float64 re-rank alone decides.
        var rows: [(key: String, vector: [Float])] = []
        for offset in 0..<3000 {
            rows.append(("n\(offset)", base.map { $0 + Float.random(in: -1e-4...1e-4, using: &rng) * scale }))
        }
        for offset in 0..<3000 {
            rows.append(("far\(offset)", base.map { $0 + Float.random(in: -1...1, using: &rng) * scale }))
        }
        try index.upsert(rows.map { .init(key: $0.key, vector: $0.vector) })
        let queries = (0..<4).map { _ in base.map { $0 + Float.random(in: -2e-4...2e-4, using: &rng) * scale } }
        let batch = try index.search(batch: queries, k: 25)
        for (query, batchResult) in zip(queries, batch) {
            let expected = reference(rows, query, k: 25).map(\.key)
            #expect(try index.search(query, k: 25).map(\.key) == expected)
            #expect(batchResult.map(\.key) == expected)
        }
    }

    @Test("a batch of many queries (several groups of 32, the last one partial) equals single searches", arguments: kernels)
    func manyQueries(kernel: VectorIndex.Kernel) throws {
        let dimension = 40
        let (index, rows) = try indexOfRandomRows(3000, dimension, seed: 31, kernel: kernel)
        let queries = randomVectors(70, dimension, seed: 32)
        let batch = try index.search(batch: queries, k: 7)
        #expect(batch.count == 70)
        for (offset, (query, result)) in zip(queries, batch).enumerated() {
            let single = try index.search(query, k: 7)
            #expect(result.map(\.key) == single.map(\.key), "query \(offset)")
            if index.kernel == .int8Prefilter {
                // Both re-rank in float64: the distances are identical, not merely close.
                #expect(result == single, "query \(offset)")
            }
            if offset % 10 == 0 { expectMatchesReference(result, reference(rows, query, k: 7)) }
        }
    }
}

import Foundation
import Testing
import TestSupport

@testable import VectorIndex

/// Rows grow in place inside a reservation of address space and move only past it; rows adopted
/// from a file sit at the start of the region and move with the rest.
@Suite("Row storage growth", .tags(.heavy), .pass(.heavy))
struct RowRegionTests {
    /// A 2 MB reservation holds 1365 rows of 384 floats: 5000 rows force several moves.
    static let smallReservation = 2 << 20

    static func expectHolds(
        _ index: VectorIndex, _ rows: [(key: String, vector: [Float])], sourceLocation: SourceLocation = #_sourceLocation
    ) throws {
        #expect(index.count == rows.count, sourceLocation: sourceLocation)
        for row in rows.indices where row % 97 == 0 || row == rows.count - 1 {
            #expect(index.get(rows[row].key)?.vector == rows[row].vector, "row \(row)", sourceLocation: sourceLocation)
        }
        for query in randomVectors(3, rows[0].vector.count, seed: 77) {
            expectMatchesReference(try index.search(query, k: 10), reference(rows, query, k: 10), sourceLocation: sourceLocation)
        }
    }

    @Test("rows written past the reservation move with everything before them", arguments: kernels)
    func growsPastReservation(kernel: VectorIndex.Kernel) throws {
        let index = try VectorIndex(dimension: 384, shards: nil, kernel: kernel, reservation: Self.smallReservation)
        let start = index.rowRegion.base
        let rows = keyedRandomRows(5000, 384, seed: 11)
        for batch in stride(from: 0, to: rows.count, by: 700) {
            try index.upsert(rows[batch..<min(rows.count, batch + 700)].map { .init(key: $0.key, vector: $0.vector) })
        }
        #expect(index.rowRegion.base != start, "the rows outgrew a 2 MB reservation")
        #expect(index.rowRegion.reserved >= 5000 * 384 * 4)
        try Self.expectHolds(index, rows)
    }

    @Test("a large reservation never moves the rows", arguments: kernels)
    func growsInPlace(kernel: VectorIndex.Kernel) throws {
        let index = try VectorIndex(dimension: 384, kernel: kernel)
        let start = index.rowRegion.base
        let rows = keyedRandomRows(5000, 384, seed: 12)
        try index.upsert(rows.map { .init(key: $0.key, vector: $0.vector) })
        #expect(index.rowRegion.base == start)
        #expect(index.rowRegion.committed < index.rowRegion.reserved)
        try Self.expectHolds(index, rows)
    }

    @Test("rows adopted from a file are searchable, then grow and move past the reservation", arguments: kernels)
    func adoptsThenGrows(kernel: VectorIndex.Kernel) throws {
        let dimension = 384
        // 1001 rows: the last page of the mapping also holds what follows the rows.
        let adopted = keyedRandomRows(1001, dimension, seed: 13)
        // The rows at a page-aligned offset after a header, as a snapshot lays them out.
        let path = NSTemporaryDirectory() + "rows-\(UUID().uuidString).bin"
        defer { unlink(path) }
        let offset = Int(getpagesize())
        var bytes = Data(count: offset)
        for row in adopted { row.vector.withUnsafeBytes { bytes.append(contentsOf: $0) } }
        bytes.append(Data(repeating: 0xAB, count: 100))  // what follows the rows in a snapshot
        try bytes.write(to: URL(fileURLWithPath: path))
        let fd = open(path, O_RDONLY)
        try #require(fd >= 0)
        defer { close(fd) }

        let index = try VectorIndex(dimension: dimension, shards: nil, kernel: kernel, reservation: Self.smallReservation)
        #expect(
            try index.adopt(
                rowsOf: fd, offset: offset, length: adopted.count * dimension * 4, keys: adopted.map(\.key),
                attributes: Array(repeating: [:], count: adopted.count)))
        try Self.expectHolds(index, adopted)

        let added = keyedRandomRows(3000, dimension, seed: 14).map { (key: "new-" + $0.key, vector: $0.vector) }
        try index.upsert(added.map { .init(key: $0.key, vector: $0.vector) })
        try Self.expectHolds(index, adopted + added)
        // Copy-on-write: the file is untouched.
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == bytes)
    }

    @Test("adopting refuses a length that does not match the keys, or a non-empty index")
    func adoptRefusesMismatch() throws {
        let index = try VectorIndex(dimension: 4)
        #expect(try !index.adopt(rowsOf: -1, offset: 0, length: 12, keys: ["a"], attributes: [[:]]))
        try index.upsert(.init(key: "b", vector: [1, 2, 3, 4]))
        #expect(try !index.adopt(rowsOf: -1, offset: 0, length: 16, keys: ["a"], attributes: [[:]]))
        #expect(index.get("b")?.vector == [1, 2, 3, 4])
    }

    @Test("address space that cannot be had is an error naming the limit, never a crash; the index is unchanged")
    func exhaustion() throws {
        #expect(throws: VectorIndexError.self) { try RowRegion(reservation: 1 << 20, minimum: 1 << 62) }
        var region = try RowRegion(reservation: 1 << 20)
        defer { region.release() }
        do {
            try region.ensure(1 << 62, used: 0)
            Issue.record("committed 2^62 bytes")
        } catch {
            #expect(error.isResourceLimit)
            #expect(error.description.contains("raise the limit"))
        }
        let index = try VectorIndex(dimension: 1 << 16)
        try index.upsert(.init(key: "a", vector: [Float](repeating: 1, count: 1 << 16)))
        #expect(throws: VectorIndexError.self) { try index.reserve(additional: 1 << 40) }
        #expect(index.count == 1)
        #expect(index.get("a")?.vector.count == 1 << 16)
    }
}

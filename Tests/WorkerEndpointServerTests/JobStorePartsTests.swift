import Synchronization
import Testing
import TestSupport

@testable import WorkerEndpointServer

@Suite("The job store's parts", .defaultPass)
struct JobStorePartsTests {
    @Test("job ids look like RunPod's (a version-4 UUID, -u1, sync- for /runsync) and never repeat")
    func jobIDs() {
        let ids = JobIDs()
        for index in 0..<1000 {
            let id = ids.next(sync: index.isMultiple(of: 2))
            #expect(id.hasPrefix("sync-") == index.isMultiple(of: 2))
            #expect(id.hasSuffix("-u1"))
            let uuid = id.hasPrefix("sync-") ? id.dropFirst(5).dropLast(3) : id.dropLast(3)
            let groups = uuid.split(separator: "-", omittingEmptySubsequences: false).map(\.count)
            #expect(groups == [8, 4, 4, 4, 12], "\(id)")
            #expect(uuid.dropFirst(14).first == "4", "\(id)")
            #expect("89ab".contains(uuid.dropFirst(19).first!), "\(id)")
            #expect(uuid.allSatisfy { $0 == "-" || $0.isHexDigit && !$0.isUppercase }, "\(id)")
        }
        var seen = Set<String>()
        for _ in 0..<100_000 { seen.insert(ids.next(sync: false)) }
        #expect(seen.count == 100_000)
        // Two stores (two workers) do not produce the same ids.
        #expect(JobIDs().next(sync: false) != JobIDs().next(sync: false))
    }

    @Test("the job table's keys: any copy of an id finds its entry, digests keep ids apart, other ids find nothing")
    func jobTableKeys() {
        let ids = JobIDs()
        var table: [JobTable.Key: Int] = [:]
        var made: [String] = []
        for index in 0..<20_000 {
            let id = ids.next(sync: index.isMultiple(of: 3))
            made.append(id)
            table[JobTable.Key(id)] = index
        }
        for (index, id) in made.enumerated() {
            // A separate string with the same bytes, as a client's path gives.
            let copy = String(decoding: Array(id.utf8), as: UTF8.self)
            #expect(table[JobTable.Key(copy)] == index)
        }
        #expect(Set(made.map { JobTable.Key($0).hash }).count == made.count, "no two ids share a digest")
        // Every byte counts, the tail after the last whole 8 bytes included, and so does the length.
        let base = "sync-0123456789abcdef0123456789abcdef012-u1"
        var digests = Set<Int>()
        for position in base.utf8.indices {
            var bytes = Array(base.utf8)
            bytes[base.utf8.distance(from: base.utf8.startIndex, to: position)] ^= 1
            digests.insert(JobTable.Key(String(decoding: bytes, as: UTF8.self)).hash)
        }
        #expect(digests.count == base.utf8.count)
        #expect(JobTable.Key("a").hash != JobTable.Key("a\u{0}").hash)
        for other in ["", "nope", "é", String(repeating: "x", count: 1000), String(made[0].dropLast())] {
            #expect(table[JobTable.Key(other)] == nil)
        }
    }

    @Test("the FIFO releases what it hands out and compacts as it goes")
    func fifo() {
        final class Tracked {}
        weak var released: Tracked?
        var queue = FIFO<Tracked>()
        do {
            let first = Tracked()
            released = first
            queue.append(first)
            for _ in 0..<3000 { queue.append(Tracked()) }
            _ = queue.removeFirst()
        }
        #expect(released == nil)
        for _ in 0..<2999 { queue.removeFirst() }
        #expect(queue.count == 1)
        #expect(!queue.isEmpty)
        queue.removeFirst()
        #expect(queue.isEmpty)
        #expect(queue.first == nil)
    }
}

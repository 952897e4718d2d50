/// The k best (smallest) candidates seen, as a max-heap on (distance, sequence): the worst kept
/// candidate is at the root, so most rows are rejected with one comparison.
struct TopK {
    struct Entry {
        var distance: Float
        var sequence: UInt64
        var slot: Int32
    }

    let k: Int
    private(set) var entries: [Entry] = []

    init(k: Int) {
        self.k = k
        entries.reserveCapacity(k)
    }

    @inline(__always)
    static func worse(_ a: Entry, _ b: Entry) -> Bool {
        a.distance > b.distance || (a.distance == b.distance && a.sequence > b.sequence)
    }

    /// The distance a candidate must beat (or tie with an earlier sequence) to get in.
    @inline(__always)
    var threshold: Float { entries.count < k ? .infinity : entries[0].distance }

    @inline(__always)
    mutating func insert(_ entry: Entry) {
        if entries.count < k {
            entries.append(entry)
            siftUp(entries.count - 1)
        } else if Self.worse(entries[0], entry) {
            entries[0] = entry
            siftDown(0)
        }
    }

    private mutating func siftUp(_ start: Int) {
        var child = start
        while child > 0 {
            let parent = (child - 1) / 2
            guard Self.worse(entries[child], entries[parent]) else { return }
            entries.swapAt(child, parent)
            child = parent
        }
    }

    private mutating func siftDown(_ start: Int) {
        var parent = start
        let count = entries.count
        while true {
            let left = 2 * parent + 1
            guard left < count else { return }
            var worst = left
            if left + 1 < count, Self.worse(entries[left + 1], entries[left]) { worst = left + 1 }
            guard Self.worse(entries[worst], entries[parent]) else { return }
            entries.swapAt(worst, parent)
            parent = worst
        }
    }

    /// The best `k` of several heaps, nearest first, ties by insertion sequence.
    static func merged(_ heaps: [TopK], k: Int) -> [Entry] {
        var all = heaps.flatMap(\.entries)
        all.sort { worse($1, $0) }
        return Array(all.prefix(k))
    }
}

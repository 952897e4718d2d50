/// The k smallest upper bounds seen, as a max-heap: the root is the bound a row's lower bound
/// must beat to stay a candidate (infinity until k rows have been seen).
struct BoundHeap {
    let k: Int
    private(set) var values: [Float] = []

    init(k: Int) {
        self.k = k
        values.reserveCapacity(k)
    }

    @inline(__always)
    var threshold: Float { values.count < k ? .infinity : values[0] }

    @inline(__always)
    mutating func insert(_ value: Float) {
        if values.count < k {
            values.append(value)
            var child = values.count - 1
            while child > 0 {
                let parent = (child - 1) / 2
                guard values[child] > values[parent] else { return }
                values.swapAt(child, parent)
                child = parent
            }
        } else if value < values[0] {
            values[0] = value
            var parent = 0
            while true {
                let left = 2 * parent + 1
                guard left < k else { return }
                var larger = left
                if left + 1 < k, values[left + 1] > values[left] { larger = left + 1 }
                guard values[larger] > values[parent] else { return }
                values.swapAt(larger, parent)
                parent = larger
            }
        }
    }

    /// The k-th smallest of the values of several heaps (infinity when they hold fewer than k).
    static func threshold(of heaps: some Sequence<BoundHeap>, k: Int) -> Float {
        var all = heaps.flatMap(\.values)
        guard all.count >= k else { return .infinity }
        all.sort()
        return all[k - 1]
    }
}

import COpenBLAS

#if canImport(Glibc)
import Glibc
#endif

extension VectorIndex {
    /// Shards smaller than this are not worth a thread.
    static let minRowsPerShard = 4096
    /// Rows per sgemv block in single search.
    static let singleBlockRows = 32768
    /// Rows per sgemm block in batch search: the block's scores stay in cache for the heap pass.
    static let batchBlockRows = 1024
    /// Queries per sgemm call in batch search.
    static let batchQueryChunk = 256

    /// The `k` nearest rows to `query` (fewer when the index, or the filter, has fewer), nearest
    /// first, ties by insertion order. `filter` keeps rows whose attributes equal every pair.
    public func search(_ query: [Float], k: Int, filter: [String: String]? = nil) throws(VectorIndexError) -> [Match] {
        try validate(query)
        guard k >= 1 else { throw .badK(k) }
        return lock.withReadLock {
            let count = keys.count
            guard count > 0 else { return [] }
            if kernel == .int8Prefilter { return prefilterSearch(query, k: k, filter: filter) }
            let queryNorm = query.withUnsafeBufferPointer { cblas_sdot(Int32(dimension), $0.baseAddress, 1, $0.baseAddress, 1) }
            let ranges = shardRanges(count)
            var heaps = [TopK](repeating: TopK(k: min(k, count)), count: ranges.count)
            heaps.withUnsafeMutableBufferPointer { heaps in
                let heapBuffer = heaps
                query.withUnsafeBufferPointer { q in
                    parallelFor(ranges.count) { shard in
                        let range = ranges[shard]
                        // Block by block, so each block's scores are scanned while still in cache.
                        let blockRows = Self.singleBlockRows
                        let scores = UnsafeMutablePointer<Float>.allocate(capacity: blockRows)
                        defer { scores.deallocate() }
                        var heap = TopK(k: min(k, count))
                        var start = range.lowerBound
                        while start < range.upperBound {
                            let end = min(start + blockRows, range.upperBound)
                            cblas_sgemv(
                                CblasRowMajor, CblasNoTrans, Int32(end - start), Int32(dimension), 1, rows + start * dimension,
                                Int32(dimension), q.baseAddress, 1, 0, scores, 1)
                            scan(start..<end, scores: scores, scoreStride: 1, queryNorm: queryNorm, filter: filter, into: &heap)
                            start = end
                        }
                        heapBuffer[shard] = heap
                    }
                }
            }
            return TopK.merged(heaps, k: k).map { Match(key: keys[Int($0.slot)], distance: $0.distance) }
        }
    }

    /// Searches many queries at once (faster per query: one matrix multiply per block of rows).
    public func search(batch queries: [[Float]], k: Int, filter: [String: String]? = nil) throws(VectorIndexError)
        -> [[Match]]
    {
        guard k >= 1 else { throw .badK(k) }
        for query in queries { try validate(query) }
        guard !queries.isEmpty else { return [] }
        let m = queries.count
        let flat = queries.flatMap { $0 }
        return lock.withReadLock {
            let count = keys.count
            guard count > 0 else { return Array(repeating: [], count: m) }
            if kernel == .int8Prefilter { return prefilterSearch(batch: flat, queries: m, k: k, filter: filter) }
            let queryNorms = (0..<m).map { i in
                flat.withUnsafeBufferPointer { cblas_sdot(Int32(dimension), $0.baseAddress! + i * dimension, 1, $0.baseAddress! + i * dimension, 1) }
            }
            let ranges = shardRanges(count)
            let heapK = min(k, count)
            // heaps[shard][query]
            var heaps = [[TopK]](repeating: [TopK](repeating: TopK(k: heapK), count: m), count: ranges.count)
            heaps.withUnsafeMutableBufferPointer { heaps in
                let heapBuffer = heaps
                flat.withUnsafeBufferPointer { q in
                    parallelFor(ranges.count) { shard in
                        var shardHeaps = [TopK](repeating: TopK(k: heapK), count: m)
                        let blockRows = Self.batchBlockRows
                        let chunk = Self.batchQueryChunk
                        let scores = UnsafeMutablePointer<Float>.allocate(capacity: chunk * blockRows)
                        defer { scores.deallocate() }
                        let range = ranges[shard]
                        var blockStart = range.lowerBound
                        while blockStart < range.upperBound {
                            let blockEnd = min(blockStart + blockRows, range.upperBound)
                            let n = blockEnd - blockStart
                            var queryStart = 0
                            while queryStart < m {
                                let mq = min(chunk, m - queryStart)
                                cblas_sgemm(
                                    CblasRowMajor, CblasNoTrans, CblasTrans, Int32(mq), Int32(n), Int32(dimension), 1,
                                    q.baseAddress! + queryStart * dimension, Int32(dimension), rows + blockStart * dimension,
                                    Int32(dimension), 0, scores, Int32(n))
                                for i in 0..<mq {
                                    scan(
                                        blockStart..<blockEnd, scores: scores + i * n, scoreStride: 1,
                                        queryNorm: queryNorms[queryStart + i], filter: filter, into: &shardHeaps[queryStart + i])
                                }
                                queryStart += mq
                            }
                            blockStart = blockEnd
                        }
                        heapBuffer[shard] = shardHeaps
                    }
                }
            }
            return (0..<m).map { i in
                TopK.merged(heaps.map { $0[i] }, k: k).map { Match(key: keys[Int($0.slot)], distance: $0.distance) }
            }
        }
    }

    /// Turns dot products into distances (the norms trick) and feeds the heap; the filter is
    /// applied here, before the heap, never inside the BLAS call. Raw pointers, and a path with no
    /// filter check at all: this loop runs once per (query, row).
    @inline(__always)
    private func scan(
        _ range: Range<Int>, scores: UnsafePointer<Float>, scoreStride: Int, queryNorm: Float, filter: [String: String]?,
        into heap: inout TopK
    ) {
        columns.norms.withUnsafeBufferPointer { normsBuffer in
            sequences.withUnsafeBufferPointer { sequenceBuffer in
                let norms = normsBuffer.baseAddress! + range.lowerBound
                let sequences = sequenceBuffer.baseAddress! + range.lowerBound
                let count = range.count
                var threshold = heap.threshold
                var j = 0
                while j < count {
                    let distance = queryNorm + norms[j] - 2 * scores[j &* scoreStride]
                    if distance <= threshold {
                        let row = range.lowerBound + j
                        if filter == nil || matches(row, filter!) {
                            heap.insert(TopK.Entry(distance: max(0, distance), sequence: sequences[j], slot: Int32(row)))
                            threshold = heap.threshold
                        }
                    }
                    j &+= 1
                }
            }
        }
    }

    func matches(_ row: Int, _ filter: [String: String]) -> Bool {
        let attributes = self.attributes[row]
        for (key, value) in filter where attributes[key] != value { return false }
        return true
    }

    func shardRanges(_ count: Int) -> [Range<Int>] {
        let shardCount = max(1, min(shards, count / Self.minRowsPerShard))
        let size = (count + shardCount - 1) / shardCount
        return stride(from: 0, to: count, by: size).map { $0..<min($0 + size, count) }
    }
}

import CVectorKernels

#if canImport(Glibc)
import Glibc
#endif

/// The int8 pre-filter (see `Kernel.int8Prefilter`). Each shard streams its coded
/// rows through the kernel, which reports the rows whose lower distance bound is at most the
/// shard's current k-th best upper bound; after all shards, rows whose lower bound beats the
/// global k-th best upper bound are re-ranked by their float64 distance, ties by insertion order.
/// Any row that belongs in the exact top k has a lower bound at or under its true distance, which
/// is at or under that threshold, so it is always re-ranked: the results are exact.
extension VectorIndex {
    /// Rows per kernel call for one query (the threshold tightens between calls).
    static let prefilterSingleBlock = 1024
    /// Bytes of coded rows per batch block: the block stays in L2 while every query group
    /// passes over it.
    static let prefilterBatchBlockBytes = 256 * 1024

    struct Candidate {
        var slot: Int32
        var lower: Float
    }

    /// One shard's view of one query: its k best upper bounds and the rows still in the running.
    struct PrefilterState {
        var bounds: BoundHeap
        var candidates: [Candidate] = []
        init(k: Int) { bounds = BoundHeap(k: k) }
    }

    func prefilterSearch(_ query: [Float], k: Int, filter: [String: String]?) -> [Match] {
        let count = keys.count
        let coded = AlignedBuffer<Int8>(count: padded)
        let bounds = query.withUnsafeBufferPointer { vk_prepare_query($0.baseAddress, Int32(dimension), Int32(padded), coded.pointer) }
        let ranges = shardRanges(count)
        var states = [PrefilterState](repeating: PrefilterState(k: k), count: ranges.count)
        withCodedRows { codedRows in
          states.withUnsafeMutableBufferPointer { states in
            let statesOut = UncheckedSendable(states)
            parallelFor(ranges.count) { shard in
                let range = ranges[shard]
                var state = PrefilterState(k: k)
                let found = AlignedBuffer<vk_candidate>(count: Self.prefilterSingleBlock)
                var start = range.lowerBound
                while start < range.upperBound {
                    // A short first block: until k rows are seen every row is reported.
                    let blockRows = start == range.lowerBound ? min(max(k, 64), Self.prefilterSingleBlock) : Self.prefilterSingleBlock
                    let end = min(start + blockRows, range.upperBound)
                    let reported = vk_scan_one_at(
                        level, codedRows.value.advanced(by: start, padded: padded), end - start, Int32(padded), coded.pointer,
                        bounds, state.bounds.threshold, found.pointer)
                    for index in 0..<reported {
                        let entry = found.pointer[index]
                        let slot = start + Int(entry.row)
                        if let filter, !matches(slot, filter) { continue }
                        state.bounds.insert(entry.upper)
                        state.candidates.append(Candidate(slot: Int32(slot), lower: entry.lower))
                    }
                    start = end
                }
                statesOut.value[shard] = state
            }
          }
        }
        return query.withUnsafeBufferPointer { rerank(states[...], query: $0.baseAddress!, k: k) }
    }

    func prefilterSearch(batch flat: [Float], queries m: Int, k: Int, filter: [String: String]?) -> [[Match]] {
        let count = keys.count
        let groups = (m + 31) / 32
        let steps = padded / 4
        let codedQueries = AlignedBuffer<Int8>(count: groups * 32 * padded)
        var groupBounds = [vk_query](repeating: vk_query(), count: groups * 32)
        flat.withUnsafeBufferPointer { flat in
            for i in 0..<m {
                groupBounds[i] = vk_prepare_query(
                    flat.baseAddress! + i * dimension, Int32(dimension), Int32(padded), codedQueries.pointer + i * padded)
            }
        }
        let packed = AlignedBuffer<Int32>(count: groups * steps * 32)
        for group in 0..<groups {
            vk_pack_group(
                codedQueries.pointer + group * 32 * padded, Int32(min(32, m - group * 32)), Int32(padded),
                packed.pointer + group * steps * 32)
        }
        let blockRows = max(12, Self.prefilterBatchBlockBytes / padded / 12 * 12)
        let ranges = shardRanges(count)
        // states[shard][query]
        var states = [[PrefilterState]](repeating: [], count: ranges.count)
        withCodedRows { codedRows in
          states.withUnsafeMutableBufferPointer { states in
            let statesOut = UncheckedSendable(states)
            groupBounds.withUnsafeBufferPointer { groupBounds in
                let groupBounds = UncheckedSendable(groupBounds)
                parallelFor(ranges.count) { shard in
                    let range = ranges[shard]
                    var shardStates = [PrefilterState](repeating: PrefilterState(k: k), count: m)
                    let found = AlignedBuffer<vk_candidate>(count: 32 * blockRows)
                    var thresholds = [Float](repeating: -.infinity, count: 32)
                    var blockStart = range.lowerBound
                    while blockStart < range.upperBound {
                        let blockEnd = min(blockStart + blockRows, range.upperBound)
                        for group in 0..<groups {
                            let first = group * 32
                            for lane in 0..<32 {
                                // Lanes past the last query never match.
                                thresholds[lane] = first + lane < m ? shardStates[first + lane].bounds.threshold : -.infinity
                            }
                            let reported = thresholds.withUnsafeBufferPointer { thresholds in
                                vk_scan_group_at(
                                    level, codedRows.value.advanced(by: blockStart, padded: padded), blockEnd - blockStart,
                                    Int32(padded), packed.pointer + group * steps * 32, groupBounds.value.baseAddress! + first,
                                    thresholds.baseAddress, found.pointer)
                            }
                            for index in 0..<reported {
                                let entry = found.pointer[index]
                                let slot = blockStart + Int(entry.row)
                                if let filter, !matches(slot, filter) { continue }
                                let query = first + Int(entry.lane)
                                shardStates[query].bounds.insert(entry.upper)
                                shardStates[query].candidates.append(Candidate(slot: Int32(slot), lower: entry.lower))
                            }
                        }
                        blockStart = blockEnd
                    }
                    statesOut.value[shard] = shardStates
                }
            }
          }
        }
        var results = [[Match]](repeating: [], count: m)
        results.withUnsafeMutableBufferPointer { results in
            let resultsOut = UncheckedSendable(results)
            flat.withUnsafeBufferPointer { flat in
                let flat = UncheckedSendable(flat)
                let chunk = max(1, (m + shards - 1) / shards)
                parallelFor((m + chunk - 1) / chunk) { part in
                    for query in part * chunk..<min(m, (part + 1) * chunk) {
                        resultsOut.value[query] = rerank(
                            states.lazy.map { $0[query] }, query: flat.value.baseAddress! + query * dimension, k: k)
                    }
                }
            }
        }
        return results
    }

    /// The exact top k among the shards' candidates whose lower bound beats the global k-th best
    /// upper bound: float64 distances, ties by insertion sequence.
    private func rerank(_ states: some Collection<PrefilterState>, query: UnsafePointer<Float>, k: Int) -> [Match] {
        let threshold = BoundHeap.threshold(of: states.lazy.map(\.bounds), k: k)
        var scored: [(distance: Double, sequence: UInt64, slot: Int)] = []
        for state in states {
            for candidate in state.candidates where candidate.lower <= threshold {
                let slot = Int(candidate.slot)
                scored.append((vk_distance_f64(query, rows + slot * dimension, Int32(dimension)), sequences[slot], slot))
            }
        }
        scored.sort { ($0.distance, $0.sequence) < ($1.distance, $1.sequence) }
        return scored.prefix(k).map { Match(key: keys[$0.slot], distance: Float($0.distance)) }
    }

    /// The coded rows and their per-row bounds as the kernels read them (the caller holds the
    /// lock; read-only access, so concurrent searches may share it).
    private func withCodedRows<Result>(_ body: (UncheckedSendable<vk_rows>) -> Result) -> Result {
        columns.withKernelRows(codes: codes) { body(UncheckedSendable($0)) }
    }
}

extension vk_rows {
    /// The same rows from `start` on.
    func advanced(by start: Int, padded: Int) -> vk_rows {
        vk_rows(
            codes: codes + start * padded, norms: norms + start, lengths: lengths + start, scales: scales + start,
            errors: errors + start)
    }
}

/// A 64-byte aligned scratch buffer (the kernels use aligned vector loads).
final class AlignedBuffer<Element>: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<Element>

    init(count: Int) {
        var raw: UnsafeMutableRawPointer?
        let bytes = max(64, count * MemoryLayout<Element>.stride)
        guard posix_memalign(&raw, 64, bytes) == 0, let raw else { fatalError("out of memory allocating \(bytes) bytes") }
        memset(raw, 0, bytes)
        pointer = raw.bindMemory(to: Element.self, capacity: count)
    }

    deinit { free(pointer) }
}

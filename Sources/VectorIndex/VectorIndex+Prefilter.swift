import CVectorKernels

#if canImport(Glibc)
import Glibc
#endif

/// The bfloat16 pre-filter (see `Kernel.bfloat16Prefilter`). Each shard streams its bfloat16
/// rows through the kernel, which reports the rows whose lower distance bound is at most the
/// shard's current k-th best upper bound; after all shards, rows whose lower bound beats the
/// global k-th best upper bound are re-ranked by their float64 distance, ties by insertion order.
/// Any row that belongs in the exact top k has a lower bound at or under its true distance, which
/// is at or under that threshold, so it is always re-ranked: the results are exact.
extension VectorIndex {
    /// Rows per kernel call for one query (the threshold tightens between calls).
    static let prefilterSingleBlock = 1024
    /// Bytes of bfloat16 rows per batch block: the block stays in L2 while every query group
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

    /// The query as padded bfloat16 and the constants of its distance bounds.
    ///
    /// |s~ - s| <= c1 |q||x| for the bfloat16 dot product s~: both factors rounded to 8
    /// significant bits (2^-8 each), then float32 accumulation over `padded` terms. The slope
    /// covers 2 c1 |q| plus the float32 evaluation of the bound; `relative` covers the rounding of
    /// the stored squared norms; `absolute` covers flushed subnormals.
    func prefilterQuery(_ query: UnsafePointer<Float>, into half: UnsafeMutablePointer<UInt16>) -> vk_bounds {
        var norm: Float = 0
        var length: Float = 0
        vk_prepare_rows(query, 1, Int32(dimension), half, Int32(padded), &norm, &length)
        let c1 = 0x1p-7 + 0x1p-15 + Double(padded) * 0x1p-23
        let slope = Float(Double(length) * (2 * c1 + 0x1p-19) + 0x1p-100).nextUp
        let absolute = Float(0x1p-100 * (2 + Double(length))).nextUp
        return vk_bounds(queryNorm: norm, slope: slope, relative: 0x1p-20, absolute: absolute)
    }

    func prefilterSearch(_ query: [Float], k: Int, filter: [String: String]?) -> [Match] {
        let count = keys.count
        let half = AlignedBuffer<UInt16>(count: padded)
        let bounds = query.withUnsafeBufferPointer { prefilterQuery($0.baseAddress!, into: half.pointer) }
        let ranges = shardRanges(count)
        var states = [PrefilterState](repeating: PrefilterState(k: k), count: ranges.count)
        withRowBounds { normsPointer, lengthsPointer in
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
                    let reported = vk_scan_one(
                        halfRows! + start * padded, end - start, Int32(padded), half.pointer, normsPointer + start,
                        lengthsPointer + start, bounds, state.bounds.threshold, found.pointer)
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
        let steps = padded / 2
        let halfQueries = AlignedBuffer<UInt16>(count: groups * 32 * padded)
        var groupBounds = [vk_bounds](repeating: vk_bounds(queryNorm: 0, slope: 0, relative: 0, absolute: 0), count: groups * 32)
        flat.withUnsafeBufferPointer { flat in
            for i in 0..<m {
                groupBounds[i] = prefilterQuery(flat.baseAddress! + i * dimension, into: halfQueries.pointer + i * padded)
            }
        }
        let packed = AlignedBuffer<UInt32>(count: groups * steps * 32)
        for group in 0..<groups {
            vk_pack_group(
                halfQueries.pointer + group * 32 * padded, Int32(min(32, m - group * 32)), Int32(padded),
                packed.pointer + group * steps * 32)
        }
        let blockRows = max(12, Self.prefilterBatchBlockBytes / (padded * 2) / 12 * 12)
        let ranges = shardRanges(count)
        // states[shard][query]
        var states = [[PrefilterState]](repeating: [], count: ranges.count)
        withRowBounds { normsPointer, lengthsPointer in
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
                                vk_scan_group(
                                    halfRows! + blockStart * padded, blockEnd - blockStart, Int32(padded),
                                    packed.pointer + group * steps * 32, groupBounds.value.baseAddress! + first,
                                    thresholds.baseAddress, normsPointer + blockStart, lengthsPointer + blockStart, found.pointer)
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

    /// The per-row norms and lengths as pointers for the kernels (the caller holds the lock).
    private func withRowBounds<Result>(_ body: (_ norms: UnsafePointer<Float>, _ lengths: UnsafePointer<Float>) -> Result) -> Result {
        norms.withUnsafeBufferPointer { norms in
            lengths.withUnsafeBufferPointer { lengths in body(norms.baseAddress!, lengths.baseAddress!) }
        }
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

#if canImport(Glibc)
import Glibc
#endif
import MemoryStore
import VectorIndex

/// Times VectorIndex on float32 files written by bench_vector.py and prints one JSON line.
/// Usage: vector-bench BASE.f32 QUERIES.f32 DIMENSION K SINGLE_QUERIES
///        vector-bench build BASE.f32 DIMENSION DIRECTORY   (a durable namespace; add and store timings)
///        vector-bench open DIRECTORY DIMENSION QUERIES.f32 (cold open to the first answer)
@main
struct VectorBench {
    static func main() async throws {
        let args = CommandLine.arguments
        if args.count == 5, args[1] == "build" { return try await build(base: args[2], dimension: Int(args[3])!, directory: args[4]) }
        if args.count == 5, args[1] == "open" { return try await open(directory: args[2], dimension: Int(args[3])!, queries: args[4]) }
        guard args.count == 6, let dimension = Int(args[3]), let k = Int(args[4]), let singles = Int(args[5]) else {
            print("usage: vector-bench BASE.f32 QUERIES.f32 DIMENSION K SINGLE_QUERIES")
            exit(2)
        }
        let base = try readFloats(args[1])
        let queries = try readFloats(args[2])
        let count = base.count / dimension
        let queryCount = queries.count / dimension

        var start = now()
        let index = try VectorIndex(dimension: dimension)
        var items: [VectorIndex.Item] = []
        items.reserveCapacity(10_000)
        for row in 0..<count {
            items.append(.init(key: String(row), vector: Array(base[row * dimension..<(row + 1) * dimension])))
            if items.count == 10_000 || row == count - 1 {
                try index.upsert(items)
                items.removeAll(keepingCapacity: true)
            }
        }
        let addSeconds = now() - start

        let queryVectors = (0..<queryCount).map { Array(queries[$0 * dimension..<($0 + 1) * dimension]) }
        _ = try index.search(queryVectors[0], k: k)  // warm-up
        var singleTimes: [Double] = []
        var singleIDs: [[Int]] = []
        for query in queryVectors.prefix(singles) {
            start = now()
            let result = try index.search(query, k: k)
            singleTimes.append(now() - start)
            singleIDs.append(result.map { Int($0.key)! })
        }
        singleTimes.sort()
        start = now()
        let batch = try index.search(batch: queryVectors, k: k)
        let batchSeconds = now() - start
        let agreement = zip(singleIDs, batch).filter { $0 == $1.map { Int($0.key)! } }.count

        print(
            "{\"add_s\": \(addSeconds), \"single_p50_ms\": \(singleTimes[singleTimes.count / 2] * 1000), "
                + "\"single_mean_ms\": \(singleTimes.reduce(0, +) / Double(singleTimes.count) * 1000), "
                + "\"batch_qps\": \(Double(queryCount) / batchSeconds), \"batch_single_agreement\": \(agreement), "
                + "\"vector_kernels\": \"\(index.kernelPath)\", "
                + "\"ids\": \(singleIDs)}")
    }

    static func build(base: String, dimension: Int, directory: String) async throws {
        let floats = try readFloats(base)
        let count = floats.count / dimension
        let store = try MemoryNamespace(directory: directory, dimension: dimension, embedder: "bench")
        var start = now()
        var batch: [StoredMemory] = []
        for row in 0..<count {
            batch.append(StoredMemory(key: String(row), content: "row \(row)", vector: Array(floats[row * dimension..<(row + 1) * dimension])))
            if batch.count == 10_000 || row == count - 1 {
                try await store.store(batch)
                batch.removeAll(keepingCapacity: true)
            }
        }
        let addSeconds = now() - start
        var latencies: [Double] = []
        for index in 0..<200 {
            start = now()
            try await store.store([StoredMemory(key: "single\(index)", content: "one", vector: Array(floats[0..<dimension]))])
            latencies.append(now() - start)
        }
        latencies.sort()
        start = now()
        try await store.compact()
        let compactSeconds = now() - start
        print(
            "{\"add_per_s\": \(Double(count) / addSeconds), \"store_ack_p50_ms\": \(latencies[100] * 1000), "
                + "\"store_ack_p99_ms\": \(latencies[198] * 1000), \"compact_s\": \(compactSeconds)}")
    }

    static func open(directory: String, dimension: Int, queries: String) async throws {
        let start = now()
        let store = try MemoryNamespace(directory: directory, dimension: dimension, embedder: "bench")
        let opened = now() - start
        let query = Array(try readFloats(queries).prefix(dimension))
        let found = try store.retrieve(query, k: 10)
        let first = now() - start
        // The first write after opening grows the index past the snapshot's rows.
        var stores: [Double] = []
        for index in 0..<2 {
            let begin = now()
            try await store.store([StoredMemory(key: "after-open-\(index)", content: "one", vector: query)])
            stores.append(now() - begin)
        }
        print(
            "{\"open_s\": \(opened), \"first_answer_s\": \(first), \"count\": \(store.count), \"found\": \(found.count), "
                + "\"first_store_s\": \(stores[0]), \"second_store_s\": \(stores[1])}")
    }

    static func now() -> Double {
        var spec = timespec()
        clock_gettime(CLOCK_MONOTONIC, &spec)
        return Double(spec.tv_sec) + Double(spec.tv_nsec) / 1e9
    }

    static func readFloats(_ path: String) throws -> [Float] {
        guard let file = fopen(path, "rb") else { throw BenchError(message: "cannot open \(path)") }
        defer { fclose(file) }
        fseek(file, 0, SEEK_END)
        let bytes = ftell(file)
        fseek(file, 0, SEEK_SET)
        var values = [Float](repeating: 0, count: bytes / 4)
        let read = values.withUnsafeMutableBytes { fread($0.baseAddress, 1, bytes, file) }
        guard read == bytes else { throw BenchError(message: "short read of \(path)") }
        return values
    }
}

struct BenchError: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}

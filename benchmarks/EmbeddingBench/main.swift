#if canImport(Glibc)
import Glibc
#endif
import TextEmbedding
import WorkerJSON

/// The Swift side of benchmarks/bench_embeddings.py: loads a model, embeds the given texts in
/// batches, and prints JSON figures.
/// Usage: embedding-bench MODEL_DIR TEXTS_JSON [BATCH]
@main
struct EmbeddingBench {
    static func residentKB() -> Int {
        guard let file = fopen("/proc/self/status", "r") else { return 0 }
        defer { fclose(file) }
        var line = [CChar](repeating: 0, count: 256)
        while fgets(&line, 256, file) != nil {
            let text = String(cString: line)
            if text.hasPrefix("VmRSS:") { return Int(text.split(separator: " ").dropFirst().first ?? "0") ?? 0 }
        }
        return 0
    }

    static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }

    static func main() throws {
        BLASKernels.useBestKernels()
        let arguments = CommandLine.arguments
        guard arguments.count >= 3 else {
            print("usage: embedding-bench MODEL_DIR TEXTS_JSON [BATCH]")
            exit(2)
        }
        let batch = arguments.count > 3 ? Int(arguments[3]) ?? 32 : 32
        guard let handle = fopen(arguments[2], "r") else { fatalError("cannot read \(arguments[2])") }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let count = fread(&buffer, 1, buffer.count, handle)
            if count <= 0 { break }
            bytes += buffer[0..<count]
        }
        fclose(handle)
        let texts = try JSONValue.parse(bytes).arrayValue!.map { $0.stringValue! }

        let before = residentKB()
        let clock = ContinuousClock()
        let loadStart = clock.now
        let encoder = try SentenceEncoder(directory: arguments[1])
        _ = encoder.embed(["warm up: the first embedding"])
        let loadToFirst = clock.now - loadStart

        // As sentence-transformers' encode does: sorted by length, then batches in that order.
        let sorted = texts.sorted { $0.count > $1.count }
        var rounds: [Double] = []
        for _ in 0..<3 {
            let start = clock.now
            var index = 0
            while index < sorted.count {
                _ = encoder.embed(Array(sorted[index..<min(index + batch, sorted.count)]))
                index += batch
            }
            rounds.append(seconds(clock.now - start))
        }
        let after = residentKB()

        var single: [Double] = []
        for _ in 0..<200 {
            let start = clock.now
            _ = encoder.embed(["where is the young feline napping?"])
            single.append(seconds(clock.now - start))
        }
        single.sort()
        let best = rounds.min()!
        let result: JSONValue = [
            "texts_per_second": .number(Double(texts.count) / best), "single_p50_ms": .number(single[single.count / 2] * 1000),
            "load_to_first_ms": .number(seconds(loadToFirst) * 1000), "rss_added_mb": .number(Double(after - before) / 1024),
            "weights_mb": .number(Double(encoder.weightBytes) / 1_048_576), "threads": .integer(Int64(SentenceEncoder.cores)),
            "blas_kernels": .string(BLASKernels.current), "encoder_kernels": .string(encoder.kernelPath),
        ]
        print(try result.jsonString())
    }
}

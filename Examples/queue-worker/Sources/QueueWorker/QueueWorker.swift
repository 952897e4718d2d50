import WorkerRuntime

/// Adds numbers: a typed closure handler.
struct Sum: Decodable, Sendable {
    var numbers: [Double]
}

struct Total: Encodable, Sendable {
    var total: Double
    var count: Int
}

enum QueueWorker {
    static func makeRuntime() -> WorkerRuntime {
        WorkerRuntime { (input: Sum, context: JobContext) async throws -> Total in
            context.logger.info("adding \(input.numbers.count) numbers")
            return Total(total: input.numbers.reduce(0, +), count: input.numbers.count)
        }
    }
}

@main
struct Main {
    static func main() {
        QueueWorker.makeRuntime().runAndExit()
    }
}

import PostgresClient

#if canImport(Glibc)
import Glibc
#endif

/// pgbench's select-only transaction (`SELECT abalance FROM pgbench_accounts WHERE aid = $1`, a
/// random aid) through PostgresClient, as `pgbench -S --protocol=prepared -c <n>` runs it:
/// prints `clients <n>: <tps> tps`. Needs a database initialised by `pgbench -i`.
/// Usage: postgres-bench <url> <seconds> <accounts> <clients>...
@main
struct PostgresBench {
    static func main() async throws {
        let arguments = CommandLine.arguments
        guard arguments.count >= 5, let seconds = Double(arguments[2]), let accounts = Int(arguments[3]) else {
            print("usage: postgres-bench <url> <seconds> <accounts> <clients>...")
            exit(2)
        }
        for clients in arguments[4...].compactMap({ Int($0) }) {
            let db = try PostgresClient(configuration: PostgresConfiguration(url: arguments[1], poolSize: clients))
            // Warm-up: connections opened, statements prepared.
            try await run(db, clients: clients, until: .now + .milliseconds(500), accounts: accounts)
            let started = ContinuousClock.now
            let count = try await run(db, clients: clients, until: started + .milliseconds(Int64(seconds * 1000)), accounts: accounts)
            let elapsed = ContinuousClock.now - started
            let total = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            print("clients \(clients): \(Int(Double(count) / total)) tps")
            await db.shutdown()
        }
    }

    @discardableResult
    static func run(_ db: PostgresClient, clients: Int, until: ContinuousClock.Instant, accounts: Int) async throws -> Int {
        try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<clients {
                group.addTask {
                    var done = 0
                    var generator = SplitMix64(seed: UInt64.random(in: .min ... .max))
                    while ContinuousClock.now < until {
                        let aid = Int.random(in: 1...accounts, using: &generator)
                        let rows = try await db.query("SELECT abalance FROM pgbench_accounts WHERE aid = $1", [aid])
                        guard rows.count == 1 else { fatalError("no account row") }
                        done += 1
                    }
                    return done
                }
            }
            return try await group.reduce(0, +)
        }
    }
}

/// pgbench draws its account ids from a generator of its own (xoshiro128**, in user space);
/// `SystemRandomNumberGenerator` makes a `getrandom` system call per number, a cost pgbench
/// does not pay and that is not the client's.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

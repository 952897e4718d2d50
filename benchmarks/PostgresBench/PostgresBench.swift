import PostgresClient

#if canImport(Glibc)
import Glibc
#endif

/// pgbench's select-only transaction (`SELECT abalance FROM pgbench_accounts WHERE aid = $1`, a
/// random aid) through PostgresClient, as `pgbench -S --protocol=prepared -c <n>` runs it:
/// prints `clients <n>: <tps> tps`. Needs a database initialised by `pgbench -i`. The client's
/// tasks run on the shared concurrency pool, or with `--client-executor` on the client's own thread
/// (`PostgresClient.executor`), as a task that does little but talk to the database would.
/// Usage: postgres-bench [--client-executor] <url> <seconds> <accounts> <clients>...
@main
struct PostgresBench {
    static func main() async throws {
        var arguments = CommandLine.arguments
        let onClientExecutor = arguments.count > 1 && arguments[1] == "--client-executor"
        if onClientExecutor { arguments.remove(at: 1) }
        guard arguments.count >= 5, let seconds = Double(arguments[2]), let accounts = Int(arguments[3]) else {
            print("usage: postgres-bench [--client-executor] <url> <seconds> <accounts> <clients>...")
            exit(2)
        }
        for clients in arguments[4...].compactMap({ Int($0) }) {
            let db = try PostgresClient(configuration: PostgresConfiguration(url: arguments[1], poolSize: clients))
            // Warm-up: connections opened, statements prepared.
            let executor = onClientExecutor ? db.executor : nil
            try await run(db, clients: clients, until: .now + .milliseconds(500), accounts: accounts, on: executor)
            let started = ContinuousClock.now
            let count = try await run(
                db, clients: clients, until: started + .milliseconds(Int64(seconds * 1000)), accounts: accounts, on: executor)
            let elapsed = ContinuousClock.now - started
            let total = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            print("clients \(clients): \(Int(Double(count) / total)) tps")
            await db.shutdown()
        }
    }

    @discardableResult
    static func run(
        _ db: PostgresClient, clients: Int, until: ContinuousClock.Instant, accounts: Int, on executor: (any TaskExecutor)?
    ) async throws -> Int {
        try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<clients {
                group.addTask(executorPreference: executor) {
                    var done = 0
                    var generator = Xoshiro256StarStar()
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

/// pgbench draws its account ids from a generator of its own in user space (xoshiro, in
/// `pg_prng`); `SystemRandomNumberGenerator` makes a `getrandom` system call per number, a cost
/// pgbench does not pay and that is not the client's. xoshiro256**, seeded once per task.
struct Xoshiro256StarStar: RandomNumberGenerator {
    private var s: (UInt64, UInt64, UInt64, UInt64)

    init() {
        var system = SystemRandomNumberGenerator()
        s = (system.next(), system.next(), system.next(), system.next() | 1)
    }

    mutating func next() -> UInt64 {
        let result = rotate(s.1 &* 5, 7) &* 9
        let t = s.1 << 17
        s.2 ^= s.0
        s.3 ^= s.1
        s.1 ^= s.2
        s.0 ^= s.3
        s.2 ^= t
        s.3 = rotate(s.3, 45)
        return result
    }

    private func rotate(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 - k)) }
}

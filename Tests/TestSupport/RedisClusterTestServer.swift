#if canImport(Glibc)
import Glibc
#endif
import Foundation
import WorkerRuntimeTesting

/// A real Redis Cluster of three masters and no replicas (Debian's `redis-server` and
/// `redis-cli`, installed by scripts/test.sh), each on a loopback port of its own with no
/// persistence, joined by `redis-cli --cluster create`: slots 0-5460, 5461-10922 and
/// 10923-16383, in the order of `ports`. Helpers move slots between nodes as a resharding does
/// (for `MOVED` and `ASK`), and `stop(port:)` kills one node.
package final class RedisClusterTestServer: @unchecked Sendable {
    /// The nodes' ports, in the order `--cluster create` was given them.
    package let ports: [Int]
    package let directory: URL
    private var processes: [Int: Process] = [:]

    /// `extra` goes to every node (`--cluster-require-full-coverage no` keeps the others serving
    /// once a killed node is marked failed).
    package init(masters: Int = 3, extra: [String] = []) throws {
        ports = try Self.clusterPorts(masters)
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("redis-cluster-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        do {
            for port in ports { try start(port, extra: extra) }
            let create = try Self.cli(
                ["--cluster", "create"] + ports.map { "127.0.0.1:\($0)" } + ["--cluster-replicas", "0", "--cluster-yes"])
            guard create.status == 0 else {
                throw TimeoutError(what: "redis-cli --cluster create to succeed (exit \(create.status): \(create.output.suffix(500)))", timeout: .zero)
            }
            try waitUntilReady()
        } catch {
            stopAll()
            try? FileManager.default.removeItem(at: directory)
            throw error
        }
    }

    deinit {
        stopAll()
        try? FileManager.default.removeItem(at: directory)
    }

    /// A URL naming the first node (the seed a client starts from).
    package var url: String { "redis://127.0.0.1:\(ports[0])" }

    /// Whether redis-server and redis-cli are installed (scripts/test.sh installs both).
    package static var isInstalled: Bool {
        RedisTestServer.isInstalled && FileManager.default.isExecutableFile(atPath: cliPath)
    }

    /// Kills one node at once (SIGKILL): clients see its connections drop and new ones refused.
    package func stop(port: Int) {
        guard let process = processes.removeValue(forKey: port), process.isRunning else { return }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    /// `redis-cli` against the node on `port`: its standard output, trimmed (an error reply is
    /// text there too, as `ERR ...`).
    @discardableResult
    package func cli(_ port: Int, _ arguments: [String]) throws -> String {
        let result = try Self.cli(["-h", "127.0.0.1", "-p", String(port)] + arguments)
        guard result.status == 0 else {
            throw TimeoutError(what: "redis-cli \(arguments.prefix(3).joined(separator: " ")) on port \(port) (exit \(result.status))", timeout: .zero)
        }
        return result.output.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// The node id of the node on `port`.
    package func nodeID(_ port: Int) throws -> String {
        try cli(port, ["CLUSTER", "MYID"])
    }

    /// The slot of `key` as the server computes it (`CLUSTER KEYSLOT`).
    package func keySlot(_ key: String) throws -> Int {
        let text = try cli(ports[0], ["CLUSTER", "KEYSLOT", key])
        guard let slot = Int(text) else { throw TimeoutError(what: "CLUSTER KEYSLOT to answer a number (got \(text))", timeout: .zero) }
        return slot
    }

    /// The port of the master that serves `slot`, as the node on `asking` sees it (`CLUSTER NODES`).
    package func master(ofSlot slot: Int, asking: Int? = nil) throws -> Int {
        let nodes = try cli(asking ?? livePorts[0], ["CLUSTER", "NODES"])
        for line in nodes.split(whereSeparator: \.isNewline) {
            // <id> <ip:port@bus> <flags> <master> <ping> <pong> <epoch> <link> <slot or range>...
            let fields = line.split(separator: " ")
            guard fields.count > 8, fields[2].contains("master") else { continue }
            let address = fields[1].split(separator: "@")[0]
            guard let colon = address.lastIndex(of: ":"), let port = Int(address[address.index(after: colon)...]) else { continue }
            for range in fields[8...] where !range.hasPrefix("[") {
                let bounds = range.split(separator: "-").compactMap { Int($0) }
                if let low = bounds.first, let high = bounds.last, (low...high).contains(slot) { return port }
            }
        }
        throw TimeoutError(what: "a master serving slot \(slot) in CLUSTER NODES", timeout: .zero)
    }

    /// Starts moving `slot` from the node on `from` to the one on `to`: `IMPORTING` on the target,
    /// then `MIGRATING` on the source. Until the keys move, the source still answers for them;
    /// for a key it no longer has, it answers `-ASK`.
    package func beginMigration(slot: Int, from: Int, to: Int) throws {
        try expectOK(cli(to, ["CLUSTER", "SETSLOT", String(slot), "IMPORTING", nodeID(from)]), "SETSLOT IMPORTING")
        try expectOK(cli(from, ["CLUSTER", "SETSLOT", String(slot), "MIGRATING", nodeID(to)]), "SETSLOT MIGRATING")
    }

    /// Moves `keys` (all of one slot that is migrating) from the node on `from` to the one on
    /// `to` (`MIGRATE ... KEYS`); the slot still belongs to `from`.
    package func migrate(keys: [String], from: Int, to: Int) throws {
        guard !keys.isEmpty else { return }
        try expectOK(cli(from, ["MIGRATE", "127.0.0.1", String(to), "", "0", "5000", "KEYS"] + keys), "MIGRATE")
    }

    /// Ends a migration: `slot` belongs to the node on `to`, as every live node is told
    /// (`SETSLOT NODE`: the target first, then the source, then the others).
    package func finishMigration(slot: Int, from: Int, to: Int) throws {
        let owner = try nodeID(to)
        for port in [to, from] + livePorts.filter({ $0 != to && $0 != from }) {
            try expectOK(cli(port, ["CLUSTER", "SETSLOT", String(slot), "NODE", owner]), "SETSLOT NODE on \(port)")
        }
    }

    /// Moves `slot` with all its keys from the node on `from` to the one on `to`, as
    /// `redis-cli --cluster reshard` does.
    package func moveSlot(_ slot: Int, from: Int, to: Int) throws {
        try beginMigration(slot: slot, from: from, to: to)
        let keys = try cli(from, ["CLUSTER", "GETKEYSINSLOT", String(slot), "1000"]).split(whereSeparator: \.isNewline).map(String.init)
        try migrate(keys: keys.filter { !$0.isEmpty }, from: from, to: to)
        try finishMigration(slot: slot, from: from, to: to)
    }

    /// How often the node on `port` was sent `command` (lower case, `cluster|slots` for a
    /// subcommand): the calls it ran plus those it refused (a `MOVED` or `ASK` counts as refused).
    package func commandCount(_ port: Int, _ command: String) throws -> Int {
        let stats = try cli(port, ["INFO", "commandstats"])
        guard let line = stats.split(whereSeparator: \.isNewline).first(where: { $0.hasPrefix("cmdstat_\(command):") }) else { return 0 }
        var count = 0
        for field in line.split(separator: ":", maxSplits: 1)[1].split(separator: ",") {
            let pair = field.split(separator: "=")
            if pair.count == 2, pair[0] == "calls" || pair[0] == "rejected_calls" { count += Int(pair[1].trimmingCharacters(in: .whitespaces)) ?? 0 }
        }
        return count
    }

    /// The ports of the nodes not stopped.
    package var livePorts: [Int] { ports.filter { processes[$0]?.isRunning == true } }

    private func start(_ port: Int, extra: [String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: RedisTestServer.serverPath)
        process.arguments = [
            "--port", String(port), "--bind", "127.0.0.1", "--cluster-enabled", "yes",
            "--cluster-config-file", directory.appendingPathComponent("nodes-\(port).conf").path, "--save", "", "--appendonly", "no",
            "--dir", directory.path, "--loglevel", "warning",
        ] + extra
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        processes[port] = process
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline {
            if (try? cli(port, ["PING"])) == "PONG" { return }
            usleep(20_000)
        }
        throw TimeoutError(what: "redis-server (cluster node) to answer on port \(port)", timeout: .seconds(10))
    }

    /// Until every node says `cluster_state:ok` (it knows a master for every slot).
    private func waitUntilReady() throws {
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline {
            let states = ports.map { (try? cli($0, ["CLUSTER", "INFO"])) ?? "" }
            if states.allSatisfy({ $0.contains("cluster_state:ok") }) { return }
            usleep(50_000)
        }
        throw TimeoutError(what: "cluster_state:ok on every node (ports \(ports))", timeout: .seconds(20))
    }

    private func stopAll() {
        for port in Array(processes.keys) { stop(port: port) }
    }

    private func expectOK(_ reply: String, _ step: String) throws {
        guard reply == "OK" else { throw TimeoutError(what: "\(step) to answer OK (got \(reply))", timeout: .zero) }
    }

    private static var cliPath: String {
        ["/usr/bin/redis-cli", "/usr/local/bin/redis-cli"].first { FileManager.default.isExecutableFile(atPath: $0) } ?? "/usr/bin/redis-cli"
    }

    /// Runs redis-cli; its exit status and its output (standard output and error together).
    private static func cli(_ arguments: [String]) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: cliPath)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        process.standardInput = FileHandle.nullDevice
        try process.run()
        // Read before waiting: output larger than the pipe's buffer would otherwise never end.
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: output, as: UTF8.self))
    }

    /// `count` free loopback ports whose cluster bus ports (the port + 10000) are free too.
    private static func clusterPorts(_ count: Int) throws -> [Int] {
        var ports: [Int] = []
        for _ in 0..<200 where ports.count < count {
            let port = RedisTestServer.unusedPort()
            let taken = ports.flatMap { [$0, $0 + 10000] }
            guard port + 10000 <= 65535, !taken.contains(port), !taken.contains(port + 10000), LoopbackSocket.canBind(port: port + 10000) else { continue }
            ports.append(port)
        }
        guard ports.count == count else { throw TimeoutError(what: "\(count) free ports with free cluster bus ports", timeout: .zero) }
        return ports
    }
}

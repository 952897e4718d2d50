#if canImport(Glibc)
import Glibc
#endif
import Foundation
import WorkerRuntimeTesting

/// A real PostgreSQL server (Debian's, installed by scripts/test.sh) in a throwaway cluster on a
/// loopback port of its own, made with `initdb` and run as the `postgres` user when the tests run
/// as root (the server refuses root). `fsync=off`: a killed server keeps what it committed (the OS
/// has it), a crashed machine would not; it is for tests. `stop()` kills it
/// (SIGKILL, as a crash); `start()` brings it back on the same port and data.
package final class PostgresTestServer: @unchecked Sendable {
    package let port: Int
    package let directory: URL
    private let extra: [String]
    private var process: Process?
    package let tls: Bool

    package static let binaries = "/usr/lib/postgresql/15/bin"

    /// Whether the server is installed (scripts/test.sh installs it).
    package static var isInstalled: Bool { FileManager.default.isExecutableFile(atPath: binaries + "/postgres") }

    private static var runsAsRoot: Bool { getuid() == 0 }

    /// `tls` serves TLS (a throwaway self-signed certificate) as well as plain connections.
    package init(tls: Bool = false) throws {
        port = RedisTestServer.unusedPort()
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("postgres-test-\(UUID().uuidString)")
        self.tls = tls
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        var extra = [
            "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "full_page_writes=off",
            "-c", "max_connections=200", "-k", directory.path,
        ]
        var script = "set -e; \(Self.binaries)/initdb -D '\(directory.path)/data' -A trust -U postgres -E UTF8 --no-sync >/dev/null"
        if tls {
            script += """
                ; cd '\(directory.path)'
                openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout server.key -out server.crt -days 2 -subj '/CN=localhost' 2>/dev/null
                chmod 600 server.key
                """
            extra += ["-c", "ssl=on", "-c", "ssl_cert_file=\(directory.path)/server.crt", "-c", "ssl_key_file=\(directory.path)/server.key"]
        }
        self.extra = extra
        if Self.runsAsRoot { try Self.run("/bin/chown", ["postgres", directory.path]) }
        try Self.asPostgres(script)
        try start()
    }

    deinit {
        stop()
        try? FileManager.default.removeItem(at: directory)
    }

    /// A `postgresql://` URL for `database` (`postgres` exists from the start).
    package func url(database: String = "postgres", sslmode: String = "disable") -> String {
        "postgresql://postgres@127.0.0.1:\(port)/\(database)?sslmode=\(sslmode)"
    }

    /// Starts the server and waits until it accepts connections.
    package func start() throws {
        let process = Process()
        if Self.runsAsRoot {
            process.executableURL = URL(fileURLWithPath: "/sbin/runuser")
            process.arguments = ["-u", "postgres", "--", Self.binaries + "/postgres", "-D", directory.path + "/data", "-p", String(port)] + extra
        } else {
            process.executableURL = URL(fileURLWithPath: Self.binaries + "/postgres")
            process.arguments = ["-D", directory.path + "/data", "-p", String(port)] + extra
        }
        // The server's log, for a failing test to read (`log`).
        FileManager.default.createFile(atPath: logPath, contents: nil)
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        log.seekToEndOfFile()
        process.standardOutput = log
        process.standardError = log
        try process.run()
        self.process = process
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline {
            if Self.ready(port: port) { return }
            usleep(50_000)
        }
        throw TimeoutError(what: "postgres to accept connections on port \(port) (log: \(self.log.suffix(1500)))", timeout: .seconds(30))
    }

    private var logPath: String { directory.path + "/server.log" }

    /// What the server logged so far.
    package var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    /// Kills the server at once (its children too): clients see their connections drop.
    package func stop() {
        guard let process, process.isRunning else { return }
        // runuser waits on the postmaster as its child: kill the postmaster (its pid is the first
        // line of postmaster.pid), then runuser.
        if let pidFile = try? String(contentsOfFile: directory.path + "/data/postmaster.pid", encoding: .utf8),
            let line = pidFile.split(separator: "\n").first, let pid = Int32(line)
        {
            kill(pid, SIGKILL)
        }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        self.process = nil
        // The killed postmaster may linger as a zombie nobody reaps (its parent is gone), which
        // postgres would take for a live server holding the data directory.
        for file in ["/data/postmaster.pid", "/.s.PGSQL.\(port).lock", "/.s.PGSQL.\(port)"] {
            try? FileManager.default.removeItem(atPath: directory.path + file)
        }
        // The postmaster's children end when it does; wait until the port is free.
        for _ in 0..<100 where Self.ready(port: port) { usleep(50_000) }
    }

    /// Runs `sql` with psql as the superuser (to set a test up).
    package func psql(_ sql: String, database: String = "postgres") throws {
        try Self.run(Self.binaries + "/psql", ["-q", "-v", "ON_ERROR_STOP=1", url(database: database), "-c", sql])
    }

    private static func ready(port: Int) -> Bool {
        (try? run(binaries + "/pg_isready", ["-q", "-h", "127.0.0.1", "-p", String(port)])) != nil
    }

    private static func asPostgres(_ script: String) throws {
        if runsAsRoot {
            try run("/sbin/runuser", ["-u", "postgres", "--", "/bin/sh", "-c", script])
        } else {
            try run("/bin/sh", ["-c", script])
        }
    }

    @discardableResult
    private static func run(_ executable: String, _ arguments: [String]) throws -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw TimeoutError(what: "\(executable) \(arguments.prefix(3).joined(separator: " ")) to succeed (exit \(process.terminationStatus))", timeout: .zero)
        }
        return process.terminationStatus
    }
}

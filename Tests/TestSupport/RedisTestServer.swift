#if canImport(Glibc)
import Glibc
#endif
import Foundation
import WorkerRuntimeTesting

/// A real `redis-server` (Debian's, installed by scripts/test.sh) on a loopback port of its own,
/// with no persistence, for the tests of everything that talks to Redis. `stop()` kills it;
/// `start()` brings it back on the same port (a server restart, as clients see it).
package final class RedisTestServer: @unchecked Sendable {
    package let port: Int
    package let directory: URL
    private let arguments: [String]
    private var process: Process?

    /// TLS files made for the test: a throwaway CA and a certificate for `localhost` and
    /// 127.0.0.1 that it signed.
    package struct TLSFiles: Sendable {
        package let caFile: String
        package let certificateFile: String
        package let keyFile: String
    }

    package let tls: TLSFiles?

    /// `password` (with `user`, an ACL user) requires AUTH; `tls` serves TLS only.
    package init(password: String? = nil, user: String? = nil, tls: Bool = false, extra: [String] = []) throws {
        port = Self.unusedPort()
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("redis-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        var arguments = ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", directory.path, "--loglevel", "warning"]
        if tls {
            let files = try Self.makeCertificates(in: directory)
            self.tls = files
            arguments += [
                "--port", "0", "--tls-port", String(port), "--tls-cert-file", files.certificateFile, "--tls-key-file", files.keyFile,
                "--tls-ca-cert-file", files.caFile, "--tls-auth-clients", "no",
            ]
        } else {
            self.tls = nil
            arguments += ["--port", String(port)]
        }
        if let password {
            if let user {
                arguments += ["--user", user, "on", ">\(password)", "~*", "&*", "+@all", "--user", "default", "off"]
            } else {
                arguments += ["--requirepass", password]
            }
        }
        self.arguments = arguments + extra
        try start()
    }

    deinit {
        stop()
        try? FileManager.default.removeItem(at: directory)
    }

    /// The server's URL (`redis://127.0.0.1:port`, `rediss://localhost:port` with TLS).
    package var url: String { tls == nil ? "redis://127.0.0.1:\(port)" : "rediss://localhost:\(port)" }

    /// Starts the server and waits until it accepts connections. The server runs once made: this
    /// brings it back after `stop()`, and does nothing while it runs (a second start used to
    /// spawn a server that could not bind, take its place here, and leave the first running
    /// after the test: `stop()` then killed the wrong one).
    package func start() throws {
        if let process, process.isRunning { return }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.serverPath)
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        self.process = process
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline {
            if LoopbackSocket.accepts(port: port) { return }
            usleep(20_000)
        }
        throw TimeoutError(what: "redis-server to listen on port \(port)", timeout: .seconds(10))
    }

    /// Kills the server at once (SIGKILL): clients see their connections drop.
    package func stop() {
        guard let process, process.isRunning else { return }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        self.process = nil
    }

    package static var serverPath: String {
        ["/usr/bin/redis-server", "/usr/local/bin/redis-server"].first { FileManager.default.isExecutableFile(atPath: $0) }
            ?? "/usr/bin/redis-server"
    }

    /// Whether redis-server is installed (scripts/test.sh installs it).
    package static var isInstalled: Bool { FileManager.default.isExecutableFile(atPath: serverPath) }

    package static func unusedPort() -> Int {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(descriptor) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
                bind(descriptor, pointer, length)
                return getsockname(descriptor, pointer, &length)
            }
        }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// A CA and a server certificate it signed (P-256 keys: quick to make), made with the `openssl` command.
    private static func makeCertificates(in directory: URL) throws -> TLSFiles {
        let path = directory.path
        let script = """
            set -e
            cd '\(path)'
            openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout ca.key -out ca.crt -days 2 -subj '/CN=Test CA' 2>/dev/null
            openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout server.key -out server.csr -subj '/CN=localhost' 2>/dev/null
            printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\n' > san.ext
            openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out server.crt -days 2 -extfile san.ext 2>/dev/null
            chmod 644 server.key
            """
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", script]
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw TimeoutError(what: "openssl to make test certificates (exit \(process.terminationStatus))", timeout: .zero)
        }
        return TLSFiles(caFile: path + "/ca.crt", certificateFile: path + "/server.crt", keyFile: path + "/server.key")
    }
}

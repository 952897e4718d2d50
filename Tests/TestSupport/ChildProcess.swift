#if canImport(Glibc)
import Glibc
#endif
import CurlHTTP
import Foundation
import WorkerJSON
import WorkerRuntimeTesting

/// A built executable of this package (`echo`, `mock-platform`) run as a child process.
package final class ChildProcess: @unchecked Sendable {
    package let process = Process()
    private let stdoutPipe = Pipe()
    private let stderrPipe = Pipe()
    private var stdinPipe: Pipe?
    private let output = NSLock()
    private var stdoutData = Data()
    private var stderrData = Data()

    /// The directory holding the test bundle also holds the package's executables.
    package static var productsDirectory: URL {
        URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    }

    package static func executable(_ name: String) throws -> URL {
        let url = productsDirectory.appendingPathComponent(name)
        guard FileManager.default.isExecutableFile(atPath: url.path) else {
            throw TimeoutError(what: "\(name) to be built at \(url.path) (run swift build first)", timeout: .zero)
        }
        return url
    }

    /// `descriptorLimit` runs it under that many open files (`prlimit --nofile`).
    package init(
        _ name: String, arguments: [String] = [], environment: [String: String] = [:], directory: URL? = nil,
        descriptorLimit: Int? = nil, standardInput: Bool = false, captureOutput: Bool = true
    ) throws {
        if let descriptorLimit {
            // prlimit execs the worker: the process id stays the worker's.
            process.executableURL = URL(fileURLWithPath: "/usr/bin/prlimit")
            process.arguments = ["--nofile=\(descriptorLimit):\(descriptorLimit)", try Self.executable(name).path] + arguments
        } else {
            process.executableURL = try Self.executable(name)
            process.arguments = arguments
        }
        // A clean environment: the test runner's own variables must not leak into the worker.
        var env = ["PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"]
        env.merge(environment) { _, new in new }
        process.environment = env
        if let directory { process.currentDirectoryURL = directory }
        if standardInput {
            let pipe = Pipe()
            process.standardInput = pipe
            stdinPipe = pipe
        }
        process.standardOutput = stdoutPipe
        process.standardError = stderrPipe
        // Without capture the test reads standard output itself (`readOutput`), when it chooses.
        if captureOutput {
            stdoutPipe.fileHandleForReading.readabilityHandler = { [weak self] handle in
                let data = handle.availableData
                self?.output.withLock { self?.stdoutData.append(data) }
            }
        }
        stderrPipe.fileHandleForReading.readabilityHandler = { [weak self] handle in
            let data = handle.availableData
            self?.output.withLock { self?.stderrData.append(data) }
        }
        try process.run()
    }

    package var stdout: String { output.withLock { String(decoding: stdoutData, as: UTF8.self) } }
    package var stderr: String { output.withLock { String(decoding: stderrData, as: UTF8.self) } }

    /// Writes to the child's standard input (made with `standardInput: true`).
    package func writeInput(_ text: String) {
        stdinPipe?.fileHandleForWriting.write(Data(text.utf8))
    }

    /// Reads what the child wrote to standard output (made with `captureOutput: false`), waiting
    /// for some; 0 at its end.
    package func readOutput(into buffer: inout [UInt8]) -> Int {
        let descriptor = stdoutPipe.fileHandleForReading.fileDescriptor
        return buffer.withUnsafeMutableBytes { Glibc.read(descriptor, $0.baseAddress, $0.count) }
    }

    /// The child's resident memory in bytes.
    package var residentBytes: Int { ProcessGauges.residentBytes(of: "\(process.processIdentifier)") }

    /// Ends the child's standard input.
    package func closeInput() {
        try? stdinPipe?.fileHandleForWriting.close()
    }

    package func signal(_ signal: Int32) { kill(process.processIdentifier, signal) }

    /// Open descriptors of the child.
    package var openDescriptors: Int {
        (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(process.processIdentifier)/fd").count) ?? 0
    }

    /// CPU time the child has used (user + system).
    package var cpuTime: Duration {
        guard let stat = try? String(contentsOfFile: "/proc/\(process.processIdentifier)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return .zero }
        // Fields after the command name: state is field 3; utime and stime are 14 and 15.
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 13, let user = Int(fields[11]), let system = Int(fields[12]) else { return .zero }
        let ticks = sysconf(Int32(_SC_CLK_TCK))
        return .milliseconds((user + system) * 1000 / max(1, ticks))
    }

    /// Waits for exit and returns the status; kills the process after `timeout`.
    package func wait(timeout: Duration = .seconds(20)) async throws -> Int32 {
        let deadline = ContinuousClock.now + timeout
        while process.isRunning {
            if ContinuousClock.now > deadline {
                process.terminate()
                throw TimeoutError(what: "\(process.executableURL!.lastPathComponent) to exit", timeout: timeout)
            }
            try await Task.sleep(for: .milliseconds(10))
        }
        try await Task.sleep(for: .milliseconds(50))  // let the pipes drain
        return process.terminationStatus
    }

    /// Waits until standard output contains `text`.
    package func waitForOutput(_ text: String, timeout: Duration = .seconds(20)) async throws {
        let deadline = ContinuousClock.now + timeout
        while !stdout.contains(text) {
            guard ContinuousClock.now < deadline, process.isRunning else {
                throw TimeoutError(what: "'\(text)' on stdout (got: \(stdout) \(stderr))", timeout: timeout)
            }
            try await Task.sleep(for: .milliseconds(5))
        }
    }

    /// Waits for the worker's "Serving … on http://host:port" line (it may have asked for port 0)
    /// and returns the port it listens on.
    package func servingPort(timeout: Duration = .seconds(30)) async throws -> Int {
        let deadline = ContinuousClock.now + timeout
        while true {
            if let port = Self.servingPort(in: stderr) { return port }
            guard ContinuousClock.now < deadline, process.isRunning else {
                throw TimeoutError(what: "the worker to serve (stderr: \(stderr))", timeout: timeout)
            }
            try await Task.sleep(for: .milliseconds(5))
        }
    }

    /// The port of the endpoint API in a worker's log ("Serving the … on http://host:port …").
    package static func servingPort(in log: String) -> Int? {
        port(in: log) { $0.contains("Serving the ") && !$0.contains("health check") }
    }

    /// The port of the separate health-check listener (`PORT_HEALTH`) in a worker's log.
    package static func healthPort(in log: String) -> Int? {
        port(in: log) { $0.contains("Serving the health check") }
    }

    private static func port(in log: String, line matches: (Substring) -> Bool) -> Int? {
        for line in log.split(separator: "\n") where matches(line) {
            guard let url = line.range(of: "http://") else { continue }
            let hostAndPort = line[url.upperBound...].prefix { $0 != " " && $0 != "/" }
            guard let colon = hostAndPort.lastIndex(of: ":") else { continue }
            if let port = Int(hostAndPort[hostAndPort.index(after: colon)...]) { return port }
        }
        return nil
    }

    deinit {
        if process.isRunning { process.terminate() }
    }
}

/// The mock platform in its own process, so the worker under test cannot starve it.
package struct ExternalPlatform {
    package let process: ChildProcess
    package let base: String
    private let client = CurlHTTPClient(name: "test-platform-control")

    package static func start(longPollMs: Int = 100) async throws -> ExternalPlatform {
        let process = try ChildProcess("mock-platform", arguments: ["--long-poll-ms", "\(longPollMs)"])
        try await process.waitForOutput("listening on ")
        let port = process.stdout.split(separator: " ").last!.trimmingCharacters(in: .whitespacesAndNewlines)
        return ExternalPlatform(process: process, base: "http://127.0.0.1:\(port)")
    }

    package var environment: [String: String] {
        [
            "RUNPOD_WEBHOOK_GET_JOB": "\(base)/v2/ep1/job-take/$ID?gpu=test",
            "RUNPOD_WEBHOOK_POST_OUTPUT": "\(base)/v2/ep1/job-done/$RUNPOD_POD_ID/$ID?gpu=test",
            "RUNPOD_WEBHOOK_POST_STREAM": "\(base)/v2/ep1/job-stream/$RUNPOD_POD_ID/$ID?gpu=test",
            "RUNPOD_WEBHOOK_PING": "\(base)/v2/ep1/ping/$RUNPOD_POD_ID?gpu=test",
            "RUNPOD_POD_ID": "w42", "RUNPOD_AI_API_KEY": "test-key",
        ]
    }

    package func enqueue(_ jobs: JSONValue) async throws {
        let response = try await client.execute(try .json(url: "\(base)/_enqueue", body: jobs))
        guard response.status == 200 else { throw TimeoutError(what: "enqueue: \(response.text)", timeout: .zero) }
    }

    package func requests() async throws -> [JSONValue] {
        let response = try await client.execute(HTTPClientRequest(url: "\(base)/_requests"))
        return try JSONValue.parse(response.body).arrayValue ?? []
    }

    package func stop() {
        process.signal(SIGKILL)
    }
}

import Foundation
import WorkerRuntime
import WorkerRuntimeTesting

/// A built executable of this package (`echo`, `mock-platform`) run as a child process.
final class ChildProcess: @unchecked Sendable {
    let process = Process()
    private let stdoutPipe = Pipe()
    private let stderrPipe = Pipe()
    private let output = NSLock()
    private var stdoutData = Data()
    private var stderrData = Data()

    /// The directory holding the test bundle also holds the package's executables.
    static var productsDirectory: URL {
        URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    }

    static func executable(_ name: String) throws -> URL {
        let url = productsDirectory.appendingPathComponent(name)
        guard FileManager.default.isExecutableFile(atPath: url.path) else {
            throw TimeoutError(what: "\(name) to be built at \(url.path) (run swift build first)", timeout: .zero)
        }
        return url
    }

    init(_ name: String, arguments: [String] = [], environment: [String: String] = [:], directory: URL? = nil) throws {
        process.executableURL = try Self.executable(name)
        process.arguments = arguments
        // A clean environment: the test runner's own variables must not leak into the worker.
        var env = ["PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"]
        env.merge(environment) { _, new in new }
        process.environment = env
        if let directory { process.currentDirectoryURL = directory }
        process.standardOutput = stdoutPipe
        process.standardError = stderrPipe
        stdoutPipe.fileHandleForReading.readabilityHandler = { [weak self] handle in
            let data = handle.availableData
            self?.output.withLock { self?.stdoutData.append(data) }
        }
        stderrPipe.fileHandleForReading.readabilityHandler = { [weak self] handle in
            let data = handle.availableData
            self?.output.withLock { self?.stderrData.append(data) }
        }
        try process.run()
    }

    var stdout: String { output.withLock { String(decoding: stdoutData, as: UTF8.self) } }
    var stderr: String { output.withLock { String(decoding: stderrData, as: UTF8.self) } }

    func signal(_ signal: Int32) { kill(process.processIdentifier, signal) }

    /// Waits for exit and returns the status; kills the process after `timeout`.
    func wait(timeout: Duration = .seconds(20)) async throws -> Int32 {
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
    func waitForOutput(_ text: String, timeout: Duration = .seconds(20)) async throws {
        let deadline = ContinuousClock.now + timeout
        while !stdout.contains(text) {
            guard ContinuousClock.now < deadline, process.isRunning else {
                throw TimeoutError(what: "'\(text)' on stdout (got: \(stdout) \(stderr))", timeout: timeout)
            }
            try await Task.sleep(for: .milliseconds(5))
        }
    }

    deinit {
        if process.isRunning { process.terminate() }
    }
}

/// The mock platform in its own process, so the worker under test cannot starve it.
struct ExternalPlatform {
    let process: ChildProcess
    let base: String

    static func start(longPollMs: Int = 100) async throws -> ExternalPlatform {
        let process = try ChildProcess("mock-platform", arguments: ["--long-poll-ms", "\(longPollMs)"])
        try await process.waitForOutput("listening on ")
        let port = process.stdout.split(separator: " ").last!.trimmingCharacters(in: .whitespacesAndNewlines)
        return ExternalPlatform(process: process, base: "http://127.0.0.1:\(port)")
    }

    var environment: [String: String] {
        [
            "RUNPOD_WEBHOOK_GET_JOB": "\(base)/v2/ep1/job-take/$ID?gpu=test",
            "RUNPOD_WEBHOOK_POST_OUTPUT": "\(base)/v2/ep1/job-done/$RUNPOD_POD_ID/$ID?gpu=test",
            "RUNPOD_WEBHOOK_POST_STREAM": "\(base)/v2/ep1/job-stream/$RUNPOD_POD_ID/$ID?gpu=test",
            "RUNPOD_WEBHOOK_PING": "\(base)/v2/ep1/ping/$RUNPOD_POD_ID?gpu=test",
            "RUNPOD_POD_ID": "w42", "RUNPOD_AI_API_KEY": "test-key",
        ]
    }

    func enqueue(_ jobs: JSONValue) async throws {
        let response = try await CurlHTTPClient.shared.execute(try .json(url: "\(base)/_enqueue", body: jobs))
        guard response.status == 200 else { throw TimeoutError(what: "enqueue: \(response.text)", timeout: .zero) }
    }

    func requests() async throws -> [JSONValue] {
        let response = try await CurlHTTPClient.shared.execute(HTTPClientRequest(url: "\(base)/_requests"))
        return try JSONValue.parse(response.body).arrayValue ?? []
    }

    func stop() {
        process.signal(SIGKILL)
    }
}

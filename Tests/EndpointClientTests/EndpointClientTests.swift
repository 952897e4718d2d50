import CurlHTTP
import EndpointAPI
import EndpointClient
import Hummingbird
import NIOCore
import Synchronization
import Testing
import TestSupport
import WorkerJSON

@Suite("Endpoints, settings and the poll schedule", .defaultPass)
struct EndpointSettingsTests {
    @Test("A base URL or a bare endpoint id; the key from ENDPOINT_API_KEY, else RUNPOD_API_KEY")
    func endpoints() throws {
        #expect(try Endpoint("abc-123_x", apiKey: nil).baseURL == "https://api.runpod.ai/v2/abc-123_x")
        #expect(try Endpoint("http://127.0.0.1:8000/v2/local/", apiKey: "").baseURL == "http://127.0.0.1:8000/v2/local")
        #expect(try Endpoint("http://h/v2/x", apiKey: "").apiKey == nil)
        for bad in ["", "ftp://x/v2/y", "has space", "https://x/v2/y?wait=1", "a.b"] {
            #expect(throws: EndpointClientError.self) { try Endpoint(bad, apiKey: nil) }
        }
        let both = try #require(try Endpoint.fromEnvironment(
            ["MEMORY_ENDPOINT": "mem1", "ENDPOINT_API_KEY": "k1", "RUNPOD_API_KEY": "k2"], variable: "MEMORY_ENDPOINT"))
        #expect(both.apiKey == "k1")
        #expect(try Endpoint.fromEnvironment(["MEMORY_ENDPOINT": "mem1", "RUNPOD_API_KEY": "k2"], variable: "MEMORY_ENDPOINT")?.apiKey == "k2")
        #expect(try Endpoint.fromEnvironment([:], variable: "MEMORY_ENDPOINT") == nil)
        do {
            _ = try Endpoint.fromEnvironment(["MEMORY_ENDPOINT": "ftp://nope"], variable: "MEMORY_ENDPOINT")
            Issue.record("must be refused")
        } catch {
            #expect("\(error)".contains("MEMORY_ENDPOINT"))
        }
    }

    @Test("Polls grow to the cap, jittered within bounds")
    func schedule() {
        let schedule = PollSchedule(initial: .milliseconds(100), factor: 2, cap: .seconds(1), jitter: 0.2)
        #expect(schedule.delay(attempt: 0, random: 0.5) == .milliseconds(100))
        #expect(schedule.delay(attempt: 3, random: 0.5) == .milliseconds(800))
        #expect(schedule.delay(attempt: 10, random: 0.5) == .seconds(1))
        #expect(schedule.delay(attempt: 100, random: 0) == .milliseconds(800))
        #expect(schedule.delay(attempt: 100, random: 1) == .milliseconds(1200))
    }
}

/// Against `echo --local`, a real server of the endpoint API.
@Suite("The endpoint client against echo --local", .defaultPass, .tags(.process))
struct EndpointClientEchoTests {
    private static let key = "endpoint-client-key"
    private static let quick = PollSchedule(initial: .milliseconds(50), factor: 1.5, cap: .milliseconds(300), jitter: 0.2)

    private func withEcho(_ body: @Sendable (EndpointClient, LocalWorker) async throws -> Void) async throws {
        let worker = try await LocalWorker.start("echo", environment: ["RUNPOD_API_KEY": Self.key, "WORKER_CONCURRENCY": "4"])
        defer { worker.stop() }
        let client = EndpointClient(endpoint: try Endpoint("\(worker.base)/v2/echo", apiKey: Self.key))
        defer { Task { await client.shutdown() } }
        try await body(client, worker)
    }

    @Test("run, status, runSync, stream, health: the answers, read with the server's own definitions")
    func routes() async throws {
        try await withEcho { client, _ in
            let queued = try await client.run(JobRequest(input: ["hello": "world"]))
            #expect(queued.status == .inQueue && !queued.id.isEmpty)
            var report = try await client.status(queued.id)
            for _ in 0..<100 where !report.status.isFinal {
                try await Task.sleep(for: .milliseconds(20))
                report = try await client.status(queued.id)
            }
            #expect(report.status == .completed && report.output == ["hello": "world"])

            let sync = try await client.runSync(JobRequest(input: ["n": 1]))
            #expect(sync.status == .completed && sync.output == ["n": 1])

            let streamed = try await client.run(JobRequest(input: ["stream": 3]))
            var outputs: [JSONValue] = []
            var status = JobStatus.inQueue
            for _ in 0..<100 where !status.isFinal {
                let (now, chunks) = try await client.stream(streamed.id)
                status = now
                outputs += chunks
                if !status.isFinal { try await Task.sleep(for: .milliseconds(20)) }
            }
            #expect(outputs == [["chunk": 0], ["chunk": 1], ["chunk": 2]])
            let health = try await client.health()
            #expect(health["jobs"]?["completed"]?.intValue ?? 0 >= 3)
        }
    }

    @Test("result(of:): every final status comes back; a job longer than /runsync's wait is polled for")
    func finalStatuses() async throws {
        try await withEcho { client, _ in
            let done = try await client.result(of: JobRequest(input: ["a": 1]), within: .seconds(20), schedule: Self.quick)
            #expect(done.status == .completed && done.output == ["a": 1])
            let polled = try await client.result(
                of: JobRequest(input: ["sleep": 2.2, "b": 2]), within: .seconds(20), schedule: Self.quick, syncWait: .seconds(1))
            #expect(polled.status == .completed && polled.output?["b"] == 2)
            let failed = try await client.result(of: JobRequest(input: ["fail": "boom"]), within: .seconds(20), schedule: Self.quick)
            #expect(failed.status == .failed && failed.error?.contains("boom") == true)
            let timedOut = try await client.result(
                of: JobRequest(input: ["sleep": 5], policy: JobPolicy(executionTimeout: .seconds(1))), within: .seconds(20), schedule: Self.quick,
                syncWait: .seconds(1))
            #expect(timedOut.status == .timedOut)
            do {
                _ = try await client.output(of: JobRequest(input: ["fail": "again"]), within: .seconds(20), schedule: Self.quick)
                Issue.record("a failed job has no output")
            } catch let error as EndpointClientError {
                #expect(error.jobStatus == .failed)
                #expect("\(error)".contains("again") && "\(error)".contains("/v2/echo"))
            }
        }
    }

    @Test("Past the deadline the job is cancelled on the endpoint, and the error names endpoint and job")
    func deadline() async throws {
        try await withEcho { client, _ in
            let started = ContinuousClock.now
            do {
                _ = try await client.result(of: JobRequest(input: ["sleep": 30]), within: .seconds(2), schedule: Self.quick, syncWait: .seconds(1))
                Issue.record("a 30 s job cannot finish in 2 s")
            } catch let error as EndpointClientError {
                #expect(error.isDeadline)
                #expect(ContinuousClock.now - started < .seconds(5))
                let id = try #require(error.jobID)
                #expect("\(error)".contains(id))
                #expect(try await client.status(id).status == .cancelled)
            }
        }
    }

    @Test("cancel, retry and purge-queue")
    func management() async throws {
        try await withEcho { client, _ in
            let long = try await client.run(JobRequest(input: ["sleep": 30]))
            let cancelled = try await client.cancel(long.id)
            #expect(cancelled.status == .cancelled)
            let failed = try await client.result(of: JobRequest(input: ["fail": "once"]), within: .seconds(10), schedule: Self.quick)
            let retried = try await client.retry(failed.id)
            #expect(retried.id == failed.id && !retried.status.isFinal || retried.status == .failed)
            let purge = try await client.purgeQueue()
            #expect(purge["removed"] != nil)
        }
    }

    @Test("A wrong key is a 401 that says which key to check; an unreachable endpoint was never sent to")
    func failures() async throws {
        try await withEcho { _, worker in
            let wrong = EndpointClient(endpoint: try Endpoint("\(worker.base)/v2/echo", apiKey: "wrong"))
            defer { Task { await wrong.shutdown() } }
            do {
                _ = try await wrong.run(JobRequest(input: [:]))
                Issue.record("the key is wrong")
            } catch let error as EndpointClientError {
                #expect(error.httpStatus == 401)
                #expect("\(error)".contains("ENDPOINT_API_KEY"))
            }
        }
        let nowhere = EndpointClient(endpoint: try Endpoint("http://127.0.0.1:\(RedisTestServer.unusedPort())/v2/x", apiKey: nil))
        defer { Task { await nowhere.shutdown() } }
        do {
            _ = try await nowhere.run(JobRequest(input: [:]))
            Issue.record("nothing listens there")
        } catch let error as EndpointClientError {
            #expect(error.wasNotSent && error.isTransient)
        }
    }
}

/// Against a scripted server: what RunPod's API does that echo does not.
@Suite("The endpoint client against scripted answers", .defaultPass)
struct EndpointClientScriptedTests {
    private static let quick = PollSchedule(initial: .milliseconds(20), factor: 1.5, cap: .milliseconds(100), jitter: 0.2)

    @Test("429 on submission is retried; polls ride out 5xx and dropped answers; CANCELLED by someone else is final")
    func scripted() async throws {
        let calls = Mutex<[String]>([])
        let router = Router()
        router.post("v2/x/runsync") { _, _ in
            let count = calls.withLock { $0.append("runsync"); return $0.filter { $0 == "runsync" }.count }
            if count == 1 { return Response(status: .tooManyRequests, body: .init(byteBuffer: ByteBuffer(string: #"{"error":"slow down"}"#))) }
            return Self.json(#"{"id":"job-1","status":"IN_QUEUE"}"#)
        }
        router.get("v2/x/status/:id") { _, _ in
            let count = calls.withLock { $0.append("status"); return $0.filter { $0 == "status" }.count }
            switch count {
            case 1: return Response(status: .serviceUnavailable)
            case 2: return Self.json(#"{"id":"job-1","status":"IN_PROGRESS"}"#)
            default: return Self.json(#"{"id":"job-1","status":"CANCELLED","delayTime":5,"executionTime":10}"#)
            }
        }
        router.post("v2/x/cancel/:id") { _, _ in Self.json(#"{"id":"job-1","status":"CANCELLED"}"#) }
        router.post("v2/bad/runsync") { _, _ in Response(status: .ok, body: .init(byteBuffer: ByteBuffer(string: "<html>")) ) }
        router.post("v2/odd/runsync") { _, _ in Self.json(#"{"id":"j","status":"SLEEPING"}"#) }
        try await runOnLoopback(router) { base in
            let client = EndpointClient(endpoint: try Endpoint("\(base)/v2/x", apiKey: nil))
            defer { Task { await client.shutdown() } }
            let report = try await client.result(of: JobRequest(input: [:]), within: .seconds(10), schedule: Self.quick)
            #expect(report.status == .cancelled && report.executionTime == 10)
            #expect(calls.withLock { $0 } == ["runsync", "runsync", "status", "status", "status"])

            let bad = EndpointClient(endpoint: try Endpoint("\(base)/v2/bad", apiKey: nil))
            defer { Task { await bad.shutdown() } }
            do {
                _ = try await bad.runSync(JobRequest(input: [:]))
                Issue.record("HTML is not an answer")
            } catch {
                #expect("\(error)".contains("not JSON"))
            }
            let odd = EndpointClient(endpoint: try Endpoint("\(base)/v2/odd", apiKey: nil))
            defer { Task { await odd.shutdown() } }
            do {
                _ = try await odd.runSync(JobRequest(input: [:]))
                Issue.record("an unknown status must be refused")
            } catch {
                #expect("\(error)".contains("SLEEPING"))
            }
        }
    }

    static func json(_ text: String) -> Response {
        Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: text)))
    }
}

import EndpointAPI
import Testing
import TestSupport
import WorkerJSON

@Suite("The endpoint API on the wire", .defaultPass)
struct EndpointAPITests {
    @Test("a request body: input required, webhook an http(s) URL, policy in milliseconds, other keys kept")
    func requestBodies() throws {
        let request = try JobRequest(
            json: [
                "input": ["prompt": "hi"], "webhook": "https://example.com/hook",
                "policy": ["executionTimeout": 5000, "ttl": 60000, "lowPriority": true], "s3Config": ["bucketName": "b"],
            ])
        #expect(request.input == ["prompt": "hi"])
        #expect(request.webhook == "https://example.com/hook")
        #expect(request.policy == JobPolicy(executionTimeout: .seconds(5), ttl: .seconds(60), lowPriority: true))
        #expect(request.extra["s3Config"] == ["bucketName": "b"])
        #expect(request.extra["input"] == nil)
        #expect(try JobRequest(json: request.json).json == request.json)
        // Any JSON value is an input, null included.
        #expect(try JobRequest(json: ["input": nil]).input == .null)
    }

    @Test("a bad request body is refused with a message naming the field", arguments: [
        (JSONValue.array([]), "JSON object"), (["inputs": 1], "\"input\""), (["input": 1, "webhook": "ftp://x"], "webhook"),
        (["input": 1, "policy": 5], "policy"), (["input": 1, "policy": ["ttl": 0]], "policy.ttl"),
        (["input": 1, "policy": ["executionTimeout": 1.5]], "policy.executionTimeout"),
        (["input": 1, "policy": ["executionTimeout": 700_000_000]], "policy.executionTimeout"),
        (["input": 1, "policy": ["lowPriority": "yes"]], "policy.lowPriority"),
    ] as [(JSONValue, String)])
    func badRequests(body: JSONValue, named: String) {
        do {
            _ = try JobRequest(json: body)
            Issue.record("accepted \(body)")
        } catch {
            #expect(error.description.contains(named))
        }
    }

    @Test("a status report reads and writes the cloud's envelope; every final status is final")
    func statusReports() throws {
        let report = JobStatusReport(
            id: "j1", status: .completed, delayTime: 12, executionTime: 34, output: ["x": 1], workerID: "w1")
        #expect(report.json == ["id": "j1", "status": "COMPLETED", "delayTime": 12, "executionTime": 34, "output": ["x": 1], "workerId": "w1"])
        #expect(try JobStatusReport(json: report.json) == report)
        // /run answers only id and status; an object error is kept as its JSON text.
        #expect(try JobStatusReport(json: ["id": "j2", "status": "IN_QUEUE"]).status == .inQueue)
        #expect(try JobStatusReport(json: ["id": "j3", "status": "FAILED", "error": ["code": 1]]).error == #"{"code":1}"#)
        #expect(JobStatus.allCases.filter(\.isFinal) == [.completed, .failed, .cancelled, .timedOut])
        #expect(throws: EndpointAPIError.self) { try JobStatusReport(json: ["id": "j4", "status": "RUNNING_LATE"]) }
        #expect(throws: EndpointAPIError.self) { try JobStatusReport(json: ["status": "COMPLETED"]) }
    }

    @Test("the webhook payload is the envelope plus the input and the webhook")
    func webhookPayload() {
        let report = JobStatusReport(id: "j1", status: .failed, error: "boom")
        #expect(
            report.webhookPayload(input: ["a": 1], webhook: "http://h/x")
                == ["id": "j1", "status": "FAILED", "delayTime": 0, "executionTime": 0, "error": "boom", "input": ["a": 1],
                    "webhook": "http://h/x"])
    }
}

@Suite("What an upstream's status says", .defaultPass)
struct UpstreamStatusTests {
    @Test("429 and 5xx were not taken (another upstream may take them); 508, a loop refused, is an answer, as 2xx and 4xx are")
    func notAccepted() {
        for status in [429, 500, 502, 503, 504, 599] { #expect(UpstreamStatus.notAccepted(status), "\(status)") }
        for status in [200, 202, 400, 401, 404, 413, 508] { #expect(!UpstreamStatus.notAccepted(status), "\(status)") }
    }

    @Test("A refusal in OpenAI's shape: loop_detected for 508, invalid_request_error otherwise")
    func refusal() {
        #expect(OpenAIError.refusal(message: "m", status: 508)["error"]?["type"] == "loop_detected")
        #expect(OpenAIError.refusal(message: "m", status: 400)["error"]?["type"] == "invalid_request_error")
        #expect(OpenAIError.refusal(message: "m", status: 400)["error"]?["status"] == 400)
    }
}

@Suite("The status envelope's writer", .defaultPass)
struct StatusReportWriterTests {
    @Test("writes exactly the canonical form of the envelope, every field present or not")
    func matchesCanonicalForm() throws {
        let reports = [
            JobStatusReport(id: "j1", status: .inQueue),
            JobStatusReport(id: "sync-x-u1", status: .completed, delayTime: 5, executionTime: 1234, output: ["b": 1, "a": [nil, 2.5]]),
            JobStatusReport(id: "j\"2", status: .failed, error: "bo\nom", workerID: "w-1"),
            JobStatusReport(id: "j3", status: .timedOut, delayTime: -0, executionTime: .max, output: "é", error: "", workerID: ""),
        ]
        for report in reports {
            #expect(try report.serialized() == report.json.serialized(), "\(report)")
        }
    }
}

import Testing
import TestSupport
import WorkerJSON

@testable import WorkerRuntime

@Suite("job-done bodies", .defaultPass)
struct ResultBodyTests {
    @Test(
        "returned values map to the platform's body (checklist 13, 14, 15)",
        arguments: [
            (["result": 2], ["output": ["result": 2]]),
            ("hello", ["output": "hello"]),
            (5, ["output": 5]),
            ([1, 2], ["output": [1, 2]]),
            (true, ["output": true]),
            (nil, ["output": nil]),
            ([:], [:]),
            (["error": "custom failure", "detail": 1], ["output": ["detail": 1], "error": "custom failure"]),
            (["error": "x"], ["error": "x"]),
            (["error": "", "a": 1], ["output": ["a": 1]]),
            (["x": 1, "refresh_worker": true], ["output": ["x": 1], "stopPod": true]),
            (["x": 1, "refresh_worker": false], ["output": ["x": 1]]),
            (["error": ["code": 7]], ["error": #"{"code":7}"#]),
        ] as [(JSONValue, JSONValue)])
    func returned(value: JSONValue, expected: JSONValue) {
        #expect(ResultBody.forReturnedValue(value, refreshWorker: false) == expected)
    }

    @Test("refresh_worker in the runtime's options marks every result (checklist 16)")
    func refreshOption() {
        #expect(ResultBody.forReturnedValue(1, refreshWorker: true) == ["output": 1, "stopPod": true])
        #expect(ResultBody.forStreamEnd(aggregate: nil, refreshWorker: true) == ["output": [], "stopPod": true])
    }

    @Test("a thrown error is a JSON string with type, message, trace, host, worker, version (checklist 17)")
    func thrown() throws {
        struct Boom: Error, CustomStringConvertible { var description: String { "boom" } }
        let body = ResultBody.forThrownError(Boom(), workerID: "w42", hostname: "host-1", refreshWorker: false)
        let text = try #require(body["error"]?.stringValue)
        let details = try JSONValue.parse(text)
        #expect(details["error_message"] == "boom")
        #expect(details["error_type"]?.stringValue?.contains("Boom") == true)
        #expect(details["hostname"] == "host-1")
        #expect(details["worker_id"] == "w42")
        #expect(details["runpod_version"] == "1.12.0")
        #expect(details["error_traceback"] != nil)
        let anonymous = ResultBody.forThrownError(Boom(), workerID: nil, hostname: "h", refreshWorker: false)
        #expect(try JSONValue.parse(anonymous["error"]!.stringValue!)["worker_id"] == "unknown")
    }

    @Test("streams end with the aggregate or [], an error chunk or a handler error (checklist 20, 21, 22)")
    func streamEnd() {
        #expect(ResultBody.forStreamEnd(aggregate: nil, refreshWorker: false) == ["output": []])
        #expect(ResultBody.forStreamEnd(aggregate: [1, 2], refreshWorker: false) == ["output": [1, 2]])
        #expect(ResultBody.forStreamError("bad chunk", refreshWorker: false) == ["error": "bad chunk"])
        struct Boom: Error, CustomStringConvertible { var description: String { "kaput" } }
        let thrown = ResultBody.forStreamThrown(Boom(), refreshWorker: false)
        #expect(thrown["error"]?.stringValue?.hasPrefix("handler: kaput \ntraceback: ") == true)
        #expect(ResultBody.forChunk(["tok": 0]) == ["output": ["tok": 0]])
        #expect(ResultBody.forProgress(["step": 1]) == ["status": "IN_PROGRESS", "output": ["step": 1]])
    }

    @Test("a result over 10 MB or with NaN becomes an error result that says why")
    func undeliverable() throws {
        let big: JSONValue = ["output": .string(String(repeating: "x", count: ResultBody.maxResultBytes + 1))]
        let (payload, isError) = ResultBody.encodeForDelivery(big, refreshWorker: false)
        let bytes = payload.bytes
        #expect(isError)
        #expect(try JSONValue.parse(bytes) == payload.json)
        let error = try #require(try JSONValue.parse(bytes)["error"]?.stringValue)
        #expect(error.contains("over the platform's limit"))
        #expect(bytes.count < 1000)

        let (nan, _) = ResultBody.encodeForDelivery(["output": .number(.nan)], refreshWorker: true)
        let parsed = try JSONValue.parse(nan.bytes)
        #expect(parsed["error"]?.stringValue?.contains("could not be encoded") == true)
        #expect(parsed["stopPod"] == true)
    }
}

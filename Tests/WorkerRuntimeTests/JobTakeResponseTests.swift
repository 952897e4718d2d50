import Testing
import TestSupport
import WorkerJSON

@testable import WorkerRuntime

@Suite("job-take and job-stop answers", .defaultPass)
struct JobTakeResponseTests {
    func take(_ status: Int, _ body: String = "") -> JobTakeOutcome {
        JobTakeOutcome.interpret(status: status, body: Array(body.utf8))
    }

    @Test("204 and 400 mean no job, 429 waits, 5xx fails (checklist 8)")
    func statuses() {
        guard case .noJob = take(204), case .noJob = take(400), case .tooManyRequests = take(429),
            case .failed(let reason) = take(503, "overloaded"), case .noJob = take(200, "  ")
        else {
            Issue.record("wrong interpretation")
            return
        }
        #expect(reason.contains("503"))
        #expect(reason.contains("overloaded"))
    }

    @Test("an object is one job, an array a batch (checklist 10)")
    func bodies() throws {
        guard case .jobs(let one) = take(200, #"{"id":"a","input":{}}"#) else { Issue.record("no job"); return }
        #expect(one.count == 1)
        guard case .jobs(let batch) = take(200, #"[{"id":"a","input":1},{"id":"b","input":2}]"#) else {
            Issue.record("no batch")
            return
        }
        #expect(batch.map { $0["id"] } == ["a", "b"])
    }

    @Test("a body that is not JSON or not a job is a failure naming what came")
    func malformed() {
        guard case .failed(let reason) = take(200, "<html>oops</html>") else { Issue.record("accepted"); return }
        #expect(reason.contains("<html>oops"))
        guard case .failed(let number) = take(200, "42") else { Issue.record("accepted"); return }
        #expect(number.contains("number"))
    }

    @Test("jobs must have a string id and an input (checklist 9)")
    func validation() throws {
        #expect(throws: JobValidationError.self) { try Job(json: ["input": [:]]) }
        #expect(throws: JobValidationError.self) { try Job(json: ["id": 5, "input": [:]]) }
        #expect(throws: JobValidationError.self) { try Job(json: ["id": "", "input": [:]]) }
        #expect(throws: JobValidationError.self) { try Job(json: "job") }
        do {
            _ = try Job(json: ["id": "j1"])
            Issue.record("a job without input was accepted")
        } catch {
            #expect(error.jobID == "j1")
            #expect(error.description.contains("input"))
        }
        let job = try Job(json: ["id": "j1", "input": nil, "webhook": "http://h", "batchId": "b"])
        #expect(job.webhook == "http://h")
        #expect(job.batchID == "b")
    }

    @Test("job-stop: ids to stop, nothing, 429, failures (checklist 27, 28)")
    func stops() {
        func stop(_ status: Int, _ body: String = "") -> StopPollOutcome {
            StopPollOutcome.interpret(status: status, body: Array(body.utf8))
        }
        #expect(stop(200, #"{"jobsToStop":["a",1,"b"]}"#) == .stop(["a", "b"]))
        #expect(stop(200, #"{"jobsToStop":[]}"#) == .nothing)
        #expect(stop(204) == .nothing)
        #expect(stop(429) == .tooManyRequests)
        guard case .failed = stop(200, "[]"), case .failed = stop(500) else { Issue.record("accepted"); return }
    }

    @Test("job-done answers: 2xx delivered, 4xx final, 5xx retried")
    func delivery() {
        #expect(DeliveryOutcome.interpret(status: 200, body: []) == .delivered)
        guard case .rejected = DeliveryOutcome.interpret(status: 400, body: []),
            case .failed = DeliveryOutcome.interpret(status: 502, body: [])
        else { Issue.record("wrong"); return }
    }
}

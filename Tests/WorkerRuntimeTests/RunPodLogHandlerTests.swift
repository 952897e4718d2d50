import Logging
import Synchronization
import Testing
import TestSupport
import WorkerJSON
@testable import WorkerRuntime

/// runpod-python's two log formats, line by line.
@Suite("RunPod log lines", .defaultPass)
struct RunPodLogHandlerTests {
    @Test("text: the level padded to seven characters, the job id between bars, other metadata sorted after the message")
    func text() {
        let collector = LogCollector()
        var logger = collector.logger()
        logger.info("plain")
        logger[metadataKey: "job-id"] = "job-1"
        logger.warning("Started.")
        logger[metadataKey: "zone"] = "b"
        logger.error("failed", metadata: ["attempt": "2"])
        logger.debug("tagged", metadata: ["job-id": "job-2"])
        #expect(collector.all == [
            "INFO   | plain\n",
            "WARN   | job-1 | Started.\n",
            "ERROR  | job-1 | failed attempt=2 zone=b\n",
            "DEBUG  | job-2 | tagged zone=b\n",
        ])
    }

    @Test("JSON: one object a line with requestId (null without a job), message and level")
    func json() throws {
        let collector = LogCollector()
        var logger = collector.logger(format: .json)
        logger.notice("no job")
        logger[metadataKey: "job-id"] = "job-7"
        logger.critical("boom", metadata: ["code": "9"])
        let lines = try collector.all.map { line in
            #expect(line.hasSuffix("\n"))
            return try JSONValue.parse(String(line.dropLast()))
        }
        #expect(lines == [
            ["requestId": .null, "message": "no job", "level": "INFO"],
            ["requestId": "job-7", "message": "boom code=9", "level": "ERROR"],
        ])
    }

    @Test("a job's lines carry its job-id and batch-id; a line below the level is never built; so does the handler's logger")
    func jobLog() throws {
        let collector = LogCollector()
        let job = try Job(json: ["id": "job-3", "input": 1, "batchId": "b-1"])
        let log = JobLog(base: collector.logger(level: .info), job: job)
        log(.info, "Started.")
        let built = Mutex(false)
        log(.debug, "\(built.withLock { $0 = true })")
        #expect(!built.withLock { $0 }, "the message of a disabled level is not evaluated")
        let context = JobContext(job: job, logger: collector.logger(), workerID: "w", deadline: nil, progress: { _ in })
        context.logger.warning("from the handler")
        #expect(collector.all == ["INFO   | job-3 | Started. batch-id=b-1\n", "WARN   | job-3 | from the handler batch-id=b-1\n"])
        let plain = JobContext(job: try Job(json: ["id": "job-4", "input": 1]), logger: collector.logger(), workerID: "w", deadline: nil, progress: { _ in })
        #expect(plain.logger[metadataKey: "job-id"] == "job-4")
        #expect(plain.logger[metadataKey: "batch-id"] == nil)
    }

    @Test("messages over 4,096 characters are cut in the middle; long UTF-8 under 4,096 characters is not")
    func truncation() {
        #expect(RunPodLogHandler.truncated(String(repeating: "é", count: 4096)) == String(repeating: "é", count: 4096))
        let long = String(repeating: "a", count: 3000) + String(repeating: "b", count: 3000)
        let cut = RunPodLogHandler.truncated(long)
        #expect(cut == String(repeating: "a", count: 2048) + "\n...TRUNCATED 1904 CHARACTERS...\n" + String(repeating: "b", count: 2048))
        let collector = LogCollector()
        collector.logger().info("\(long)")
        #expect(collector.all == ["INFO   | \(cut)\n"])
    }
}

import Logging
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

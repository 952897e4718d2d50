import EndpointAPI
import TestSupport
import Testing
import WorkerJSON
@testable import WorkerFleet

@Suite("Fleet: jobs seen completing lately", .defaultPass)
struct RecentCompletionsTests {
    @Test("Only COMPLETED reports are answered; messages are read when asked; the oldest go first past the capacity")
    func bounded() {
        let recent = RecentCompletions()
        recent.put("a", .report(JobStatusReport(id: "a", status: .completed, output: 1)))
        recent.put("f", .report(JobStatusReport(id: "f", status: .failed, error: "x")))
        recent.put("m", .message(ArraySlice(Array("raw".utf8))))
        #expect(recent.completed("a") { _ in nil }?.output == 1)
        // A failed job may be retried: never answered from here.
        #expect(recent.completed("f") { _ in nil } == nil)
        var parsed = 0
        let fromMessage = recent.completed("m") { bytes in
            parsed += 1
            return String(decoding: bytes, as: UTF8.self) == "raw" ? JobStatusReport(id: "m", status: .completed) : nil
        }
        #expect(fromMessage?.id == "m" && parsed == 1)
        #expect(recent.completed("unknown") { _ in nil } == nil)
        // A message too large to keep is not kept.
        recent.put("big", .message(ArraySlice(repeating: 0, count: RecentCompletions.maxMessage + 1)))
        #expect(recent.completed("big") { _ in JobStatusReport(id: "big", status: .completed) } == nil)
        for index in 0..<RecentCompletions.capacity {
            recent.put("j\(index)", .report(JobStatusReport(id: "j\(index)", status: .completed)))
        }
        #expect(recent.completed("a") { _ in nil } == nil)
        #expect(recent.completed("j0") { _ in nil } != nil)
        #expect(recent.completed("j\(RecentCompletions.capacity - 1)") { _ in nil } != nil)
    }
}

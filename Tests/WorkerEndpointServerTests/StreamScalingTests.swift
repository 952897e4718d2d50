import HTTPTypes
import Synchronization
import Testing
import TestSupport
import WorkerJSON
import WorkerRuntimeTesting

@testable import WorkerEndpointServer
@testable import WorkerRuntime

/// A long stream costs time in proportion to its length: every chunk is appended once, never
/// copied with the ones before it.
@Suite("Long streams", .tags(.heavy), .pass(.heavy))
struct StreamScalingTests {
    /// Runs one streaming job of `count` chunks through /run, polling /stream as a client would;
    /// returns how long it took and how many chunks the polls returned.
    func stream(_ count: Int, aggregate: Bool) async throws -> (Duration, Int) {
        let handler = StreamingClosureHandler { _, _, stream in
            for index in 0..<count { try await stream.yield(.integer(Int64(index))) }
        }
        let box = Mutex<(Duration, Int)?>(nil)
        try await withServer(handler, options: WorkerOptions(returnAggregateStream: aggregate)) { client, _ in
            let started = ContinuousClock.now
            let id = try #require(try await client.call(.post, "/run", json: ["input": 1]).body?["id"]?.stringValue)
            var polled = 0
            while true {
                let body = try #require(try await client.call(.get, "/stream/\(id)").body)
                polled += body["stream"]?.arrayValue?.count ?? 0
                if body["status"] == "COMPLETED" { break }
                try await Task.sleep(for: .milliseconds(20))
            }
            let final = try await client.waitForFinal(id)
            #expect(final["output"]?.arrayValue?.count == count)
            box.withLock { $0 = (ContinuousClock.now - started, polled) }
        }
        return try #require(box.withLock { $0 })
    }

    @Test("20,000 chunks take about four times as long as 5,000, not sixteen", arguments: [false, true])
    func linear(aggregate: Bool) async throws {
        _ = try await stream(2000, aggregate: aggregate)  // warm up
        // The faster of two runs each: this pass shares the cores with other heavy suites, and a
        // stall in one run must not read as quadratic growth (which would be a ratio near 16).
        var small = Duration.seconds(3600), large = Duration.seconds(3600)
        for _ in 0..<2 {
            let (smallTime, smallPolled) = try await stream(5000, aggregate: aggregate)
            let (largeTime, largePolled) = try await stream(20_000, aggregate: aggregate)
            #expect(smallPolled == 5000)
            #expect(largePolled == 20_000)
            small = min(small, smallTime)
            large = min(large, largeTime)
        }
        let ratio = large / small
        #expect(ratio < 8, "5,000 chunks took \(small), 20,000 took \(large): \(ratio)×")
    }
}

import EndpointAPI
import HTTPTypes
import Hummingbird
import Synchronization
import Testing
import TestSupport
import WorkerJSON
import WorkerRuntimeTesting

@testable import WorkerEndpointServer
@testable import WorkerRuntime

/// Memory held for clients is bounded in bytes, not only in jobs.
@Suite("Byte budgets", .defaultPass)
struct ByteBudgetTests {
    static let text300KB = JSONValue.string(String(repeating: "x", count: 300 * 1024))

    @Test("a final job's input is let go once it cannot run again: COMPLETED and CANCELLED at once, FAILED kept for /retry")
    func inputReleased() async throws {
        let handler = ClosureHandler { input, _ in
            if input["fail"] == true { throw TestFailure(message: "as asked") }
            if input["wait"] == true { try await Task.sleep(for: .seconds(30)) }
            return "done"
        }
        try await withServer(handler) { client, server in
            func storedInput(_ id: String) -> JSONValue? {
                server.localStore.state.withLock { $0.jobs[id: id]?.request.input }
            }
            let (_, done, _) = try await client.call(.post, "/runsync", json: ["input": ["big": Self.text300KB]])
            let completed = try #require(done?["id"]?.stringValue)
            #expect(done?["status"] == "COMPLETED")
            #expect(storedInput(completed) == .null)
            let (_, failedBody, _) = try await client.call(.post, "/runsync", json: ["input": ["fail": true]])
            let failed = try #require(failedBody?["id"]?.stringValue)
            #expect(storedInput(failed) == ["fail": true])
            // Retried, it runs on its input again (and fails again, as asked).
            #expect(try await client.call(.post, "/retry/\(failed)").status == 200)
            #expect(try await client.waitForFinal(failed)["error"]?.stringValue?.contains("as asked") == true)
            let (_, queued, _) = try await client.call(.post, "/run", json: ["input": ["wait": true]])
            let cancelled = try #require(queued?["id"]?.stringValue)
            #expect(try await client.call(.post, "/cancel/\(cancelled)").status == 200)
            #expect(storedInput(cancelled) == .null)
        }
    }

    @Test("queued inputs past QUEUED_INPUT_MB: /run and /runsync answer 429 with Retry-After; accepted again once the queue moves")
    func queuedInput() async throws {
        let gate = AsyncSignalBox()
        let handler = ClosureHandler { input, _ in
            await gate.wait()
            return "done"
        }
        try await withServer(handler, limits: { $0.queuedInputBytes = 1 << 20 }) { client, server in
            // One running (not queued), then three queued: 900 KB of the 1 MB budget.
            var ids: [String] = []
            for _ in 0..<4 {
                let (status, body, _) = try await client.call(.post, "/run", json: ["input": Self.text300KB])
                #expect(status == 200)
                ids.append(try #require(body?["id"]?.stringValue))
            }
            let (status, body, headers) = try await client.call(.post, "/run", json: ["input": Self.text300KB])
            #expect(status == 429)
            #expect(headers[.retryAfter] == "1")
            #expect(body?["error"]?.stringValue?.contains("QUEUED_INPUT_MB") == true)
            #expect(try await client.call(.post, "/runsync", json: ["input": Self.text300KB]).status == 429)
            // Small inputs still fit.
            #expect(try await client.call(.post, "/run", json: ["input": "small"]).status == 200)
            gate.open()
            for id in ids { _ = try await client.waitForFinal(id) }
            let (again, last, _) = try await client.call(.post, "/run", json: ["input": Self.text300KB])
            #expect(again == 200)
            _ = try await client.waitForFinal(try #require(last?["id"]?.stringValue))
            #expect(server.localStore.state.withLock { $0.queuedBytes } == 0, "the budget's count returns to zero")
        }
    }

    @Test("a queued job past its TTL never runs, and its input leaves the queue's count and budget once")
    func expiredWhileQueued() async throws {
        let gate = AsyncSignalBox()
        let ran = Mutex<[JSONValue]>([])
        let handler = ClosureHandler { input, _ in
            ran.withLock { $0.append(input == Self.text300KB ? "the expired job" : input) }
            if input == "blocker" { await gate.wait() }
            return input
        }
        let clock = TestClock()
        try await withServer(handler, clock: clock) { client, server in
            let blocker = try #require(try await client.call(.post, "/run", json: ["input": "blocker"]).body?["id"]?.stringValue)
            try await client.waitForStatus(blocker, "IN_PROGRESS")
            let expiring = try #require(
                try await client.call(.post, "/run", json: ["input": Self.text300KB, "policy": ["ttl": 60_000]]).body?["id"]?.stringValue)
            clock.advance(by: .seconds(120))
            server.localStore.sweep()
            #expect(try await client.call(.get, "/status/\(expiring)").status == 404)
            #expect(server.localStore.state.withLock { ($0.queued, $0.queuedBytes) } == (0, 0))
            gate.open()
            _ = try await client.waitForFinal(blocker)
            let after = try #require(try await client.call(.post, "/run", json: ["input": "after"]).body?["id"]?.stringValue)
            _ = try await client.waitForFinal(after)
            #expect(ran.withLock { $0 } == ["blocker", "after"], "the expired job was not run")
            #expect(server.localStore.state.withLock { ($0.queued, $0.queuedBytes) } == (0, 0))
        }
    }

    @Test("retained results past RETAINED_RESULTS_MB: the oldest are forgotten first, the newest kept")
    func retainedResults() async throws {
        let handler = ClosureHandler { input, _ in input }
        try await withServer(handler, limits: { $0.retainedResultBytes = 2 << 20 }) { client, server in
            var ids: [String] = []
            for _ in 0..<10 {
                let (_, body, _) = try await client.call(.post, "/run", json: ["input": Self.text300KB])
                let id = try #require(body?["id"]?.stringValue)
                _ = try await client.waitForFinal(id)
                ids.append(id)
            }
            // Each holds its input and its output, ~600 KB: three fit in 2 MB.
            let kept = try await ids.asyncFilter { try await client.call(.get, "/status/\($0)").status == 200 }
            #expect(kept == Array(ids.suffix(kept.count)), "the newest are kept")
            #expect((2...3).contains(kept.count), "\(kept.count) kept")
            #expect(server.localStore.state.withLock { $0.retainedBytes } <= 2 << 20)
            // A result larger than the whole budget is still kept until the next one finishes.
            let big = JSONValue.string(String(repeating: "y", count: 3 << 20))
            let (_, body, _) = try await client.call(.post, "/runsync", json: ["input": big])
            #expect(body?["status"] == "COMPLETED")
            let id = try #require(body?["id"]?.stringValue)
            #expect(try await client.call(.get, "/status/\(id)").status == 200)
        }
    }

    @Test("the API key comparison: equal lengths only; a key padded with NULs never matches")
    func keyComparison() {
        let key = Array("secret".utf8)
        #expect(constantTimeEqual(key, key))
        #expect(!constantTimeEqual(key + [UInt8](repeating: 0, count: 256), key))
        #expect(!constantTimeEqual(key, key + [UInt8](repeating: 0, count: 512)))
        #expect(!constantTimeEqual([], key))
    }
}

extension Array {
    fileprivate func asyncFilter(_ keep: (Element) async throws -> Bool) async rethrows -> [Element] {
        var kept: [Element] = []
        for element in self where try await keep(element) { kept.append(element) }
        return kept
    }
}

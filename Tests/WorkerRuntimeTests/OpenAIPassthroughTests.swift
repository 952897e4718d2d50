import Hummingbird
import HummingbirdTesting
import Synchronization
import Testing
import WorkerRuntimeTesting

@testable import Echo

@testable import WorkerRuntime

@Suite("OpenAI-compatible passthrough")
struct OpenAIPassthroughTests {
    /// Runs one job through the queue loop with the passthrough in front of a handler that must not be reached.
    func runJob(_ input: JSONValue, base: String, configure: (inout OpenAIConfiguration) -> Void = { _ in })
        async throws -> [InMemoryJobSource.Post]
    {
        var upstream = OpenAIConfiguration(baseURL: base, apiKey: "upstream-key")
        configure(&upstream)
        let handler = OpenAIPassthroughHandler(inner: ClosureHandler { _, _ in "the handler" }, upstream: upstream)
        let source = InMemoryJobSource()
        source.enqueue(["id": "oa", "input": input])
        try await withLoop(source: source, handler: handler) { _ in _ = try await source.waitForResults(1, timeout: .seconds(20)) }
        return source.posts
    }

    @Test("a non-streamed request is forwarded verbatim and yields exactly one JSON value")
    func nonStreamed() async throws {
        let stub = StubUpstream()
        try await stub.run { base in
            let request: JSONValue = ["model": "ok", "messages": [["role": "user", "content": "hi"]], "temperature": 0.5]
            let posts = try await runJob(["openai_route": "/v1/chat/completions", "openai_input": request], base: base)
            #expect(posts.count == 2)
            #expect(posts[0] == .init(kind: .chunk, jobID: "oa", body: ["output": StubUpstream.chatCompletion("hello")]))
            #expect(posts[1].body == ["output": [StubUpstream.chatCompletion("hello")]])
            let seen = try #require(stub.requests.withLock { $0.first })
            #expect(seen.body == request)
            #expect(seen.authorization == "Bearer upstream-key")
        }
    }

    @Test("/v1/models without a body is a GET; other jobs reach the handler")
    func modelsAndOtherJobs() async throws {
        let stub = StubUpstream()
        try await stub.run { base in
            let posts = try await runJob(["openai_route": "/v1/models"], base: base)
            #expect(posts.last?.body["output"]?[0]?["data"]?[0]?["id"] == "stub-model")
            #expect(stub.requests.withLock { $0.first?.method } == "GET")
            let plain = try await runJob(["prompt": "not openai"], base: base)
            #expect(plain.last?.body == ["output": "the handler"])
        }
    }

    @Test("a streamed request relays SSE text: first chunk alone, then coalesced, ending with [DONE]")
    func streamed() async throws {
        let stub = StubUpstream(streamEvents: 40, eventGap: .milliseconds(2), firstEventGap: .milliseconds(200))
        try await stub.run { base in
            let posts = try await runJob(
                ["openai_route": "/v1/chat/completions", "openai_input": ["model": "ok", "stream": true]], base: base)
            let chunks = posts.filter { $0.kind == .chunk }.compactMap { $0.body["output"]?.stringValue }
            let text = chunks.joined()
            #expect(text == (0..<40).map(StubUpstream.chunk).joined() + "data: [DONE]\n\n")
            #expect(chunks[0] == StubUpstream.chunk(0))
            // The first event went out alone; the other 40 (over ~80 ms) in 50 ms windows: a handful
            // of posts, not one per event.
            #expect(chunks.count < 10)
            #expect(chunks.count >= 2)
            #expect(chunks.allSatisfy { $0.hasSuffix("\n\n") })
        }
    }

    @Test("a stream the upstream ends without [DONE] still ends with it")
    func addsDone() async throws {
        let stub = StubUpstream(streamEvents: 2)
        try await stub.run { base in
            let posts = try await runJob(
                ["openai_route": "/v1/chat/completions", "openai_input": ["model": "nodone", "stream": true]], base: base)
            let text = posts.filter { $0.kind == .chunk }.compactMap { $0.body["output"]?.stringValue }.joined()
            #expect(text.hasSuffix(StubUpstream.chunk(1) + "data: [DONE]\n\n"))
        }
    }

    @Test(
        "upstream errors, garbage, hangs and dropped streams become OpenAI-schema errors, never a hang",
        arguments: [
            ("fail", false, 401, "Incorrect API key"), ("garbage", false, 502, "not JSON"), ("hang", false, 504, "timed out"),
            ("drop", true, 502, "failed"), ("stall", true, 504, "timed out"), ("fail", true, 401, "Incorrect API key"),
        ])
    func failures(model: String, stream: Bool, status: Int, message: String) async throws {
        let stub = StubUpstream()
        try await stub.run { base in
            let start = ContinuousClock.now
            let posts = try await runJob(
                ["openai_route": "/v1/chat/completions", "openai_input": ["model": .string(model), "stream": .bool(stream)]],
                base: base
            ) { upstream in
                upstream.timeout = .seconds(1)
                upstream.idleTimeout = .seconds(1)
            }
            #expect(ContinuousClock.now - start < .seconds(10))
            let final = try #require(posts.last)
            let error = try JSONValue.parse(try #require(final.body["error"]?.stringValue))
            #expect(error["code"]?.intValue == status || error["code"] != nil)
            #expect(OpenAIError.status(of: final.body["error"]) == status)
            #expect(error["message"]?.stringValue?.contains(message) == true, "\(error)")
        }
    }

    @Test("a route outside /v1/ is refused")
    func badRoute() async throws {
        let posts = try await runJob(["openai_route": "/admin/../etc", "openai_input": [:]], base: "http://127.0.0.1:1")
        #expect(OpenAIError.status(of: posts.last?.body["error"]) == 400)
    }

    @Test("base URLs with and without /v1 both work")
    func urls() {
        #expect(OpenAIConfiguration(baseURL: "http://h:1").url(for: "/v1/models") == "http://h:1/v1/models")
        #expect(OpenAIConfiguration(baseURL: "https://api.openai.com/v1/").url(for: "/v1/chat/completions") == "https://api.openai.com/v1/chat/completions")
    }

    @Test("SSE events are cut only at event boundaries")
    func eventBoundaries() {
        #expect(SSECoalescer.completeEventsEnd(Array("data: a\n\ndata: b".utf8)) == 9)
        #expect(SSECoalescer.completeEventsEnd(Array("data: a\r\n\r\n".utf8)) == 11)
        #expect(SSECoalescer.completeEventsEnd(Array("data: partial".utf8)) == 0)
    }

    @Test("the local server's /openai/v1 routes answer OpenAI requests, streamed or not, with upstream statuses")
    func localRoutes() async throws {
        let stub = StubUpstream(streamEvents: 3)
        try await stub.run { base in
            try await withServer(Echo.handlerForTests, environment: ["OPENAI_BASE_URL": base]) { client, _ in
                let (status, body, _) = try await client.call(
                    .post, "/openai/v1/chat/completions", json: ["model": "ok", "messages": [["role": "user", "content": "hi"]]])
                #expect(status == 200)
                #expect(body == StubUpstream.chatCompletion("hello"))
                let models = try await client.call(.get, "/v2/ep/openai/v1/models")
                #expect(models.body?["data"]?[0]?["id"] == "stub-model")
                let embeddings = try await client.call(.post, "/openai/v1/embeddings", json: ["model": "e", "input": "x"])
                #expect(embeddings.body?["data"]?[0]?["embedding"] == [1.0, 0.5, -0.5])
                let failed = try await client.call(.post, "/openai/v1/chat/completions", json: ["model": "fail"])
                #expect(failed.status == 401)
                #expect(failed.body?["error"]?["message"]?.stringValue?.contains("Incorrect API key") == true)
                let sse = try await client.execute(
                    uri: "/openai/v1/chat/completions", method: .post, headers: [.contentType: "application/json"],
                    body: ByteBuffer(string: #"{"model":"ok","stream":true}"#)
                ) { response in (response.status.code, response.headers[.contentType], String(buffer: response.body)) }
                #expect(sse.0 == 200)
                #expect(sse.1 == "text/event-stream")
                #expect(sse.2 == (0..<3).map(StubUpstream.chunk).joined() + "data: [DONE]\n\n")
                let streamFail = try await client.call(.post, "/openai/v1/chat/completions", json: ["model": "fail", "stream": true])
                #expect(streamFail.status == 401)
                let metrics = try await client.execute(uri: "/metrics", method: .get) { String(buffer: $0.body) }
                #expect(metrics.contains(#"worker_passthrough_requests_total{route="/v1/chat/completions",status="200"} 2"#))
                #expect(metrics.contains(#"worker_passthrough_requests_total{route="/v1/chat/completions",status="401"} 2"#))
            }
        }
    }

    @Test("webhooks: the cloud envelope on success and failure, retried after a non-200 answer")
    func webhooks() async throws {
        let stub = StubUpstream()
        try await stub.run { base in
            var server = ServerConfiguration()
            server.limits.webhookRetryDelays = [.milliseconds(50), .milliseconds(50)]
            let echo = Echo.makeRuntime()
            try await withServer(echo.handler, options: echo.options, server: server) { client, _ in
                stub.hookFailures.store(1, ordering: .relaxed)
                let ok = try await client.call(.post, "/runsync", json: ["input": ["a": 1], "webhook": .string("\(base)/hook")])
                let failed = try await client.call(.post, "/runsync", json: ["input": ["fail": "boom"], "webhook": .string("\(base)/hook")])
                try await waitUntil { stub.hooks.withLock { $0.count } == 3 }
                let hooks = stub.hooks.withLock { $0 }
                // The first delivery got a 500 and was retried.
                let first = hooks.filter { $0.body?["id"] == hooks[0].body?["id"] }
                #expect(first.count == 2)
                #expect(first[0].body == first[1].body)
                #expect(first[1].at - first[0].at >= .milliseconds(45))
                let success = try #require(hooks.first { $0.body?["status"] == "COMPLETED" }?.body)
                #expect(success["id"] == ok.body?["id"])
                #expect(success["input"] == ["a": 1])
                #expect(success["output"] == ["a": 1])
                #expect(success["webhook"] == .string("\(base)/hook"))
                #expect(success["delayTime"] != nil && success["executionTime"] != nil)
                let failure = try #require(hooks.first { $0.body?["status"] == "FAILED" }?.body)
                #expect(failure["id"] == failed.body?["id"])
                #expect(failure["error"]?.stringValue?.contains("boom") == true)
            }
        }
    }
}

extension Echo {
    static var handlerForTests: any RawJobHandler { makeRuntime().handler }
}

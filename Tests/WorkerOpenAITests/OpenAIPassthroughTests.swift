import Synchronization
import Testing
import TestSupport
import WorkerJSON
import WorkerRuntimeTesting

@testable import WorkerOpenAI
import EndpointAPI
@testable import WorkerRuntime

@Suite("OpenAI-compatible passthrough", .defaultPass)
struct OpenAIPassthroughTests {
    /// Runs one job through the queue loop with the passthrough in front of a handler that must not be reached.
    func runJob(_ input: JSONValue, base: String, configure: (inout OpenAIConfiguration) -> Void = { _ in })
        async throws -> [InMemoryJobSource.Post]
    {
        var upstream = OpenAIConfiguration(baseURL: base, apiKey: "upstream-key")
        configure(&upstream)
        let handler = OpenAIPassthroughHandler(
            inner: ClosureHandler { _, _ in "the handler" }, upstream: upstream, client: testHTTPClient)
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
        // The first event's gap is wide enough that a loaded machine (the whole suite runs in
        // parallel) still posts it before the second arrives.
        let stub = StubUpstream(streamEvents: 40, eventGap: .milliseconds(2), firstEventGap: .milliseconds(600))
        try await stub.run { base in
            let posts = try await runJob(
                ["openai_route": "/v1/chat/completions", "openai_input": ["model": "ok", "stream": true]], base: base)
            let chunks = posts.filter { $0.kind == .chunk }.compactMap { $0.body["output"]?.stringValue }
            let text = chunks.joined()
            #expect(text == (0..<40).map(StubUpstream.chunk).joined() + "data: [DONE]\n\n")
            #expect(chunks[0] == StubUpstream.chunk(0))
            // The first event went out alone; the other 40 (over ~80 ms) in 50 ms windows: a handful
            // of posts, not one per event (a loaded machine spreads the events over more windows).
            #expect(chunks.count < 25)
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

    @Test("the feature reads OPENAI_* itself and wraps the handler; without it or without the variable the handler answers")
    func feature() async throws {
        let stub = StubUpstream()
        try await stub.run { base in
            func runtime(_ features: [WorkerFeature], _ environment: [String: String]) -> WorkerRuntime {
                WorkerRuntime(
                    handler: ClosureHandler { _, _ in "the handler" }, options: WorkerOptions(), features: features, services: [],
                    logger: nil, arguments: [], environment: environment)
            }
            let job: JSONValue = ["openai_route": "/v1/models"]
            let passed = try await runtime([.openAIPassthrough()], ["OPENAI_BASE_URL": base]).test(job)
            #expect(passed.output?[0]?["data"]?[0]?["id"] == "stub-model")
            #expect(try await runtime([.openAIPassthrough()], [:]).test(job).output == "the handler")
            #expect(try await runtime([], ["OPENAI_BASE_URL": base]).test(job).output == "the handler")
            await #expect(throws: WorkerRuntimeError.self) {
                _ = try await runtime([.openAIPassthrough()], ["OPENAI_BASE_URL": "ftp://x"]).test(job)
            }
            await #expect(throws: WorkerRuntimeError.self) {
                _ = try await runtime([.openAIPassthrough()], ["OPENAI_BASE_URL": base, "OPENAI_TIMEOUT": "-3"]).test(job)
            }
        }
    }

    @Test("every OPENAI_* value is checked at start-up, with or without OPENAI_BASE_URL; the key never in the message")
    func settingsChecked() throws {
        func refused(_ environment: [String: String]) -> String? {
            do {
                _ = try OpenAIConfiguration.read(EnvironmentReader(environment))
                return nil
            } catch {
                return error.description
            }
        }
        #expect(try #require(refused(["OPENAI_TIMEOUT": "x"])).contains("OPENAI_TIMEOUT"))
        #expect(try #require(refused(["OPENAI_IDLE_TIMEOUT": "0"])).contains("OPENAI_IDLE_TIMEOUT"))
        let key = try #require(refused(["OPENAI_API_KEY": "sk-secret\nX-Injected: 1"]))
        #expect(key.contains("OPENAI_API_KEY") && !key.contains("sk-secret"))
        #expect(try #require(refused(["OPENAI_BASE_URL": "http://a b"])).contains("OPENAI_BASE_URL"))
        #expect(try #require(refused(["OPENAI_BASE_URL": "http://127.0.0.1:99999"])).contains("port"))
        #expect(refused(["OPENAI_BASE_URL": "http://127.0.0.1:8000/v1", "OPENAI_API_KEY": "sk-1"]) == nil)
        #expect(refused([:]) == nil)
    }
}


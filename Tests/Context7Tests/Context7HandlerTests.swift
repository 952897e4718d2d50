import CurlHTTP
import FakeContext7
import RedisClient
import Synchronization
import Testing
import TestSupport
import WorkerCache
import WorkerJSON
import WorkerRuntime
import WorkerRuntimeTesting

@testable import Context7

/// The handler against the fake Context7 API, one scripted behaviour per test.
@Suite("The context7 handler", .defaultPass)
struct Context7HandlerTests {
    /// Runs `body` with a handler on a fresh fake (quick backoff, so retries take milliseconds).
    private func withHandler<T: Sendable>(
        apiKey: String? = nil, latency: Duration = .zero, configure: @Sendable (inout Context7Configuration) -> Void = { _ in },
        _ body: @Sendable (Context7Handler, FakeContext7) async throws -> T
    ) async throws -> T {
        let fake = FakeContext7(latency: latency)
        return try await fake.run { base in
            var configuration = Context7Configuration()
            configuration.baseURL = base
            configuration.apiKey = apiKey
            configuration.backoffBase = .milliseconds(10)
            configuration.notFinalizedRetries = 3
            configure(&configuration)
            let handler = Context7Handler(configuration: configuration, http: CurlHTTPClient(name: "context7-test"), redis: nil)
            defer { Task { try? await handler.shutdown() } }
            return try await body(handler, fake)
        }
    }

    /// Runs one job on the handler; `logs` keeps what it logs.
    private func run(
        _ handler: Context7Handler, _ input: JSONValue, deadline: Duration = .seconds(30), logs: LogCollector? = nil
    ) async throws -> JSONValue {
        let job = Job(id: "c7", input: input)
        let context: JobContext =
            if let logs { .testing(job: job, logger: logs.logger(), deadline: .now + deadline) } else { .testing(job: job, deadline: .now + deadline) }
        return try await handler.run(try Context7Request.parse(input), context: context)
    }

    /// The error a job ends with, as text.
    private func failure(_ handler: Context7Handler, _ input: JSONValue, deadline: Duration = .seconds(30)) async -> String {
        do {
            let output = try await run(handler, input, deadline: deadline)
            return "no error: \(String(describing: output).prefix(300))"
        } catch {
            return "\(error)"
        }
    }

    @Test("resolve_library: every library in the API's order, all fields present; the query defaults to the name")
    func resolve() async throws {
        try await withHandler { handler, fake in
            let output = try await run(handler, ["action": "resolve_library", "library_name": "React"])
            let libraries = try #require(output["libraries"]?.arrayValue)
            #expect(libraries.map { $0["id"] } == ["/react/react", "/react-community/react-docs"])
            #expect(libraries[0]["trustScore"] == 9 && libraries[0]["versions"] == ["v2.0.0", "v1.9.0"])
            #expect(libraries[1]["stars"] == .null && libraries[1]["lastUpdateDate"] == .null)
            #expect(Set(libraries[0].objectValue!.keys) == Set(Context7Handler.libraryFields))
            let query = fake.requests.withLock { $0.last!.query }
            #expect(query.contains("libraryName=React") && query.contains("query=React"))
        }
    }

    @Test("get_docs: the text as Context7 sends it; a query with spaces, & and non-ASCII arrives intact")
    func docs() async throws {
        try await withHandler { handler, fake in
            let query = "use hooks & state — über"
            let output = try await run(handler, ["action": "get_docs", "library_id": "/facebook/react", "query": .string(query)])
            #expect(output["library_id"] == "/facebook/react" && output["found"] == true)
            #expect(output["content"]?.stringValue == FakeContext7.snippets(id: "/facebook/react", query: query))
            #expect(output["truncated"] == nil)
            let topic = try await run(handler, ["action": "get_docs", "library_id": "/vercel/next.js@v15.1.8", "topic": "routing"])
            #expect(topic["content"]?.stringValue?.contains("routing") == true)
            #expect(fake.requests.withLock { $0.last!.query.contains("type=txt") })
        }
    }

    @Test("tokens trims at snippet boundaries to about the budget (4 bytes a token); the first snippet always stays")
    func tokens() async throws {
        try await withHandler { handler, _ in
            let full = FakeContext7.snippets(id: "/a/b", query: "q")
            let output = try await run(handler, ["action": "get_docs", "library_id": "/a/b", "query": "q", "tokens": 300])
            let content = try #require(output["content"]?.stringValue)
            #expect(output["truncated"] == true)
            #expect(full.hasPrefix(content) && content.count < full.count)
            #expect(content.utf8.count <= 300 * 4)
            #expect(content.hasSuffix("```"))
            #expect(!content.hasSuffix("-"))
            let tiny = try await run(handler, ["action": "get_docs", "library_id": "/a/b", "query": "q", "tokens": 1])
            #expect(tiny["content"]?.stringValue == String(full[DocsTrimmer.split(full)[0]]).trimmingWhitespace)
            let all = try await run(handler, ["action": "get_docs", "library_id": "/a/b", "query": "q", "tokens": 100_000])
            #expect(all["content"]?.stringValue == full && all["truncated"] == false)
        }
    }

    @Test("Context7's own MCP tool names answer in its text shapes")
    func mcpNames() async throws {
        try await withHandler { handler, _ in
            let text = try await run(handler, ["action": "resolve-library-id", "libraryName": "react", "query": "hooks"])
            let block = try #require(text.stringValue)
            #expect(block.hasPrefix("Available Libraries:"))
            #expect(block.contains("- Context7-compatible library ID: /react/react"))
            #expect(block.contains("- Source Reputation: High") && block.contains("- Source Reputation: Low"))
            #expect(block.contains("- Code Snippets: 640") && block.contains("- Benchmark Score: 87.5") && block.contains("----------"))
            let docs = try await run(handler, ["action": "query-docs", "libraryId": "/react/react", "query": "hooks"])
            #expect(docs.stringValue == FakeContext7.snippets(id: "/react/react", query: "hooks"))
            let none = try await run(handler, ["action": "resolve-library-id", "libraryName": "nothing", "query": "x"])
            #expect(none.stringValue == Context7Text.noLibraries)
            let missing = try await run(handler, ["action": "query-docs", "libraryId": "/test/missing", "query": "x"])
            #expect(missing.stringValue == Context7Text.noDocumentation)
        }
    }

    @Test("404s are empty answers, not errors")
    func notFound() async throws {
        try await withHandler { handler, _ in
            #expect(try await run(handler, ["action": "resolve_library", "library_name": "nothing"]) == ["libraries": []])
            for id in ["/test/missing", "/test/nosnippets"] {
                let output = try await run(handler, ["action": "get_docs", "library_id": .string(id), "query": "x"])
                #expect(output == ["library_id": .string(id), "content": "", "found": false])
            }
        }
    }

    @Test("429: waits Retry-After and retries; past the deadline it gives up at once, saying so")
    func rateLimited() async throws {
        try await withHandler { handler, fake in
            let started = ContinuousClock.now
            let output = try await run(handler, ["action": "get_docs", "library_id": "/test/ratelimited", "query": "a"])
            #expect(output["found"] == true)
            #expect(ContinuousClock.now - started >= .seconds(2))
            #expect(fake.callCount == 3)
            let quick = ContinuousClock.now
            let message = await failure(handler, ["action": "get_docs", "library_id": "/test/ratelimited", "query": "b"], deadline: .milliseconds(500))
            #expect(message.contains("rate_limit_exceeded") && message.contains("CONTEXT7_API_KEY"))
            #expect(ContinuousClock.now - quick < .milliseconds(500))
        }
    }

    @Test("202 library_not_finalized: retried with backoff, then answered")
    func notFinalized() async throws {
        try await withHandler { handler, fake in
            let output = try await run(handler, ["action": "get_docs", "library_id": "/test/notfinalized", "query": "a"])
            #expect(output["found"] == true)
            #expect(fake.callCount == 3)
        }
    }

    @Test("301: followed once and the new id reported; a second redirect is an error")
    func redirected() async throws {
        try await withHandler { handler, _ in
            let output = try await run(handler, ["action": "get_docs", "library_id": "/test/moved", "query": "a"])
            #expect(output["library_id"] == "/test/newhome" && output["redirected_from"] == "/test/moved")
            #expect(output["content"]?.stringValue?.contains("/test/newhome") == true)
            let message = await failure(handler, ["action": "get_docs", "library_id": "/test/loop", "query": "a"])
            #expect(message.contains("redirected /test/loop to /test/loop2 and then again"))
        }
    }

    @Test("401 names CONTEXT7_API_KEY; the key is sent as a bearer token, and no header goes without one")
    func apiKey() async throws {
        try await withHandler(apiKey: "ctx7sk-bad") { handler, fake in
            let message = await failure(handler, ["action": "resolve_library", "library_name": "react"])
            #expect(message.contains("CONTEXT7_API_KEY") && message.contains("invalid_api_key"))
            #expect(fake.requests.withLock { $0.last!.authorization } == "Bearer ctx7sk-bad")
        }
        try await withHandler(apiKey: nil) { handler, fake in
            _ = try await run(handler, ["action": "resolve_library", "library_name": "react"])
            #expect(fake.requests.withLock { $0.last!.authorization } == nil)
        }
    }

    @Test("5xx: retried with backoff; when it persists, an error with the status, code and tries")
    func serverErrors() async throws {
        try await withHandler { handler, fake in
            let output = try await run(handler, ["action": "get_docs", "library_id": "/test/flaky", "query": "a"])
            #expect(output["found"] == true && fake.callCount == 3)
            let message = await failure(handler, ["action": "get_docs", "library_id": "/test/down", "query": "a"])
            #expect(message.contains("HTTP 500") && message.contains("internal_error") && message.contains("4 tries"))
        }
    }

    @Test("A body cut mid-stream is a network error, retried and then reported; other statuses are reported with their code")
    func brokenAnswers() async throws {
        try await withHandler { handler, _ in
            let cut = await failure(handler, ["action": "get_docs", "library_id": "/test/cut", "query": "a"])
            #expect(cut.contains("could not be reached") && cut.contains("CONTEXT7_BASE_URL"))
            let forbidden = await failure(handler, ["action": "get_docs", "library_id": "/test/forbidden", "query": "a"])
            #expect(forbidden.contains("HTTP 403") && forbidden.contains("access_denied"))
            let teapot = await failure(handler, ["action": "get_docs", "library_id": "/test/teapot", "query": "a"])
            #expect(teapot.contains("HTTP 418") && teapot.contains("teapot"))
            let garbage = await failure(handler, ["action": "resolve_library", "library_name": "garbage"])
            #expect(garbage.contains("malformed JSON"))
            let shapeless = await failure(handler, ["action": "resolve_library", "library_name": "noresults"])
            #expect(shapeless.contains("no \"results\" list"))
        }
    }

    @Test("A slow upstream is bounded by the job's deadline")
    func deadline() async throws {
        try await withHandler { handler, _ in
            let started = ContinuousClock.now
            let message = await failure(handler, ["action": "get_docs", "library_id": "/test/slow", "query": "a"], deadline: .seconds(1))
            #expect(ContinuousClock.now - started < .seconds(3))
            #expect(message.contains("deadline") || message.contains("timed out") || message.contains("Timeout"))
        }
    }

    @Test("Bad input is refused before any call, naming the field", arguments: [
        (JSONValue.string("x"), "must be an object"),
        (["library_name": "x"], "input.action is missing"),
        (["action": "explode"], "unknown action"),
        (["action": "resolve_library"], "input.library_name is missing"),
        (["action": "resolve_library", "library_name": 5], "must be a string"),
        (["action": "resolve_library", "library_name": "   "], "is empty"),
        (["action": "resolve_library", "library_name": .string(String(repeating: "a", count: 501))], "at most 500"),
        (["action": "resolve-library-id", "libraryName": "react"], "input.query is missing"),
        (["action": "get_docs", "library_id": "react", "query": "x"], "not a Context7 library id"),
        (["action": "get_docs", "library_id": "/a/b/c/d", "query": "x"], "not a Context7 library id"),
        (["action": "get_docs", "library_id": "/a/", "query": "x"], "not a Context7 library id"),
        (["action": "get_docs", "library_id": "/a/b"], "input.query is missing"),
        (["action": "get_docs", "library_id": "/a/b", "query": "x", "tokens": 0], "input.tokens"),
        (["action": "get_docs", "library_id": "/a/b", "query": "x", "tokens": 2.5], "input.tokens"),
        (["action": "query-docs", "libraryId": "/a/b"], "input.query is missing"),
        (["action": "get_docs", "library_id": "/a/b", "query": "x", "nonce": "1"], "input.nonce is not a field of get_docs"),
        (["action": "resolve-library-id", "libraryName": "react", "query": "x", "library_name": "react"], "input.library_name is not a field"),
        (["action": "resolve_library", "library_name": "react", "nonce": .null], "input.nonce is not a field of resolve_library"),
    ] as [(JSONValue, String)])
    func badInput(input: JSONValue, expected: String) {
        do {
            _ = try Context7Request.parse(input)
            Issue.record("\(input) must be refused")
        } catch {
            #expect(error.description.contains(expected), "\(error.description)")
            #expect(error.isInputError)
        }
    }

    @Test("Library ids: Context7's pattern", arguments: [
        ("/facebook/react", true), ("/vercel/next.js/v15.1.8", true), ("/vercel/next.js@v15.1.8", true),
        ("facebook/react", false), ("/facebook", false), ("/facebook//react", false), ("/a/b/c/d", false), ("/a/", false),
        ("/a/b/", false),
    ])
    func libraryIDs(id: String, valid: Bool) {
        #expect(Context7Request.isLibraryID(id) == valid)
    }

    @Test("Settings from the environment; bad ones name the variable")
    func configuration() throws {
        let configuration = try Context7Configuration.fromEnvironment([
            "CONTEXT7_BASE_URL": "http://localhost:9999/api/", "CONTEXT7_API_KEY": "ctx7sk-1", "CONTEXT7_TIMEOUT": "2",
            "REDIS_URL": "rediss://:pw@cache:6380/1", "CACHE_TTL": "60",
        ])
        #expect(configuration.baseURL == "http://localhost:9999/api")
        #expect(configuration.requestTimeout == .seconds(2) && configuration.cache.ttl == .seconds(60))
        #expect(configuration.redis?.tls == true && configuration.redis?.database == 1)
        for (name, value) in [
            ("CONTEXT7_BASE_URL", "ftp://x"), ("CONTEXT7_TIMEOUT", "0"), ("CONTEXT7_RETRIES", "99"), ("REDIS_URL", "http://pw@host"),
            ("REDIS_POOL_SIZE", "none"), ("CACHE_TTL", "-5"),
        ] {
            var env = [name: value]
            if name == "REDIS_POOL_SIZE" { env["REDIS_URL"] = "redis://localhost" }
            do {
                _ = try Context7Configuration.fromEnvironment(env)
                Issue.record("\(name)=\(value) must be refused")
            } catch {
                #expect("\(error)".contains(name), "\(error)")
            }
        }
    }

    @Test("The composed worker answers a job through its cache")
    func composed() async throws {
        let fake = FakeContext7()
        try await fake.run { base in
            var configuration = Context7Configuration()
            configuration.baseURL = base
            let result = try await Context7.makeRuntime(configuration).test(["action": "resolve_library", "library_name": "vapor"])
            #expect(result.succeeded)
            #expect(result.output?["libraries"]?.arrayValue?.first?["id"] == "/vapor/vapor")
            let failed = try await Context7.makeRuntime(configuration).test(["action": "get_docs", "library_id": "nope", "query": "x"])
            #expect(failed.error?.contains("not a Context7 library id") == true)
        }
    }

    // Issue 27, item 4.10.

    @Test("Retry-After: 0 on every answer: when retrying stops, the error names what Context7 answered, not the deadline")
    func retryAfterZero() async throws {
        try await withHandler { handler, fake in
            let limited = await failure(handler, ["action": "get_docs", "library_id": "/test/always429", "query": "a"])
            #expect(limited.contains("rate limited") && limited.contains("rate_limit_exceeded"), "\(limited)")
            #expect(limited.contains("gave up after 6 tries (5 retries allowed)") && limited.contains("CONTEXT7_API_KEY"), "\(limited)")
            #expect(!limited.contains("deadline"), "\(limited)")
            #expect(fake.callCount == 1 + Context7Upstream.maxRateLimitWaits)

            let processing = await failure(handler, ["action": "get_docs", "library_id": "/test/always202", "query": "a"])
            #expect(processing.contains("still processing") && processing.contains("library_not_finalized"), "\(processing)")
            #expect(processing.contains("gave up after 4 tries (3 retries allowed)") && !processing.contains("deadline"), "\(processing)")
            #expect(fake.callCount == 6 + 4)

            let unavailable = await failure(handler, ["action": "get_docs", "library_id": "/test/always503", "query": "a"])
            #expect(unavailable.contains("HTTP 503") && unavailable.contains("search_failed"), "\(unavailable)")
            #expect(unavailable.contains("gave up after 4 tries (3 retries allowed)") && !unavailable.contains("deadline"), "\(unavailable)")
            #expect(fake.callCount == 6 + 4 + 4)

            // Retry-After: 0 still waits the backoff step, so a short deadline ends the retries:
            // the error says so, and still names the rate limit.
            let late = await failure(handler, ["action": "get_docs", "library_id": "/test/always429", "query": "b"], deadline: .milliseconds(40))
            #expect(late.contains("rate_limit_exceeded") && late.contains("deadline"), "\(late)")
        }
    }

    @Test("202 library_not_finalized: exactly 5 retries (6 calls) by default, as docs/context7.md says")
    func notFinalizedRetryCount() async throws {
        #expect(Context7Configuration().notFinalizedRetries == 5)
        try await withHandler(configure: { $0.notFinalizedRetries = Context7Configuration().notFinalizedRetries }) { handler, fake in
            let message = await failure(handler, ["action": "get_docs", "library_id": "/test/always202", "query": "a"])
            #expect(fake.callCount == 6)
            #expect(message.contains("still processing") && message.contains("gave up after 6 tries (5 retries allowed)"), "\(message)")
        }
    }

    @Test("Search entries with a field of the wrong JSON type are skipped with a warning naming it; only such entries is an error")
    func mistypedEntries() async throws {
        try await withHandler { handler, _ in
            let logs = LogCollector()
            let output = try await run(handler, ["action": "resolve_library", "library_name": "mistyped"], logs: logs)
            #expect(output["libraries"]?.arrayValue?.map { $0["id"] } == ["/good/one"])
            #expect(output["libraries"]?[0]?["versions"] == ["v1"])
            let logged = logs.all.joined(separator: "\n")
            #expect(logged.contains("skipped 6 of 7 entries") && logged.contains("results[1] has id = 42, not a string"), "\(logged)")
            #expect(logged.contains("results[2] (/bad/title) has title = 7, not a string"), "\(logged)")

            let text = try await run(handler, ["action": "resolve-library-id", "libraryName": "mistyped", "query": "x"])
            #expect(text.stringValue?.contains("/bad/") == false)

            let message = await failure(handler, ["action": "resolve_library", "library_name": "allmistyped"])
            #expect(message.contains("no entry this handler can pass on"), "\(message)")
            #expect(message.contains("(/bad/versions) has versions = \"v1.0.0\", not a list of strings"), "\(message)")
        }
        for (entry, problem) in [
            (JSONValue.string("x"), "is \"x\", not an object"), (["title": "no id"], "has no id"),
            (["id": "/a/b", "trustScore": "high"], "(/a/b) has trustScore = \"high\", not a number"),
            (["id": "/a/b", "versions": ["v1", 2]], "(/a/b) has versions = an array, not a list of strings"),
            (["id": "/a/b", "stars": true], "(/a/b) has stars = true, not a number"),
        ] as [(JSONValue, String)] {
            #expect(Context7Handler.problem(with: entry) == problem)
        }
        #expect(Context7Handler.problem(with: ["id": "/a/b", "title": .null, "stars": 3, "benchmarkScore": 87.5, "versions": []]) == nil)
    }

    @Test("An answer over the size limit is stopped while it arrives: a declared 20 MB one before its body, an undeclared one near the limit")
    func oversizedAnswers() async throws {
        let limit = Context7Configuration().maxResponseBytes
        #expect(limit == 4 << 20)
        // A raw server: it counts what the kernel took from it, so a client that stopped reading
        // (and closed) shows as writes that fail, not as bytes a framework buffered.
        for declared in [true, false] {
            let body = 64 << 20
            let head = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                + (declared ? "Content-Length: \(body)\r\n\r\n" : "Transfer-Encoding: identity\r\nConnection: close\r\n\r\n")
            let reply = Array(head.utf8) + [UInt8](repeating: UInt8(ascii: "x"), count: body)
            let server = try ScriptedTCPServer { _ in reply }
            defer { server.stop() }
            var configuration = Context7Configuration()
            configuration.baseURL = "http://127.0.0.1:\(server.port)"
            let handler = Context7Handler(configuration: configuration, http: CurlHTTPClient(name: "context7-test"), redis: nil)
            let message = await failure(handler, ["action": "get_docs", "library_id": "/test/huge", "query": "a"])
            #expect(message.contains("more than 4 MB") && message.contains("/v2/context"), "\(message)")
            try await Task.sleep(for: .milliseconds(300))
            // Declared: refused on its Content-Length (only socket buffers' worth left the server);
            // undeclared: stopped once past the limit, with at most the sockets' buffers on top.
            let written = server.writtenBytes
            #expect(written < (declared ? 12 << 20 : 16 << 20), "\(written) of \(body) bytes left the server (declared: \(declared))")
        }
    }


    @Test("An unknown input field (a nonce) is refused, naming it, so it cannot turn cached calls into misses")
    func unknownFields() async throws {
        let fake = FakeContext7()
        try await fake.run { base in
            var configuration = Context7Configuration()
            configuration.baseURL = base
            let runtime = try Context7.makeRuntime(configuration)
            let input: JSONValue = ["action": "get_docs", "library_id": "/acme/widgets", "query": "install"]
            #expect(try await runtime.test(input).succeeded)
            for nonce in ["1", "2"] {
                var salted = try #require(input.objectValue)
                salted["nonce"] = .string(nonce)
                let result = try await runtime.test(.object(salted))
                #expect(result.error?.contains("input.nonce is not a field of get_docs") == true, "\(result.error ?? "no error")")
            }
            #expect(try await runtime.test(input).succeeded)
            #expect(fake.callCount == 1, "the salted calls never reach Context7 and the repeat is a cache hit")
        }
    }

    @Test("Each tool takes exactly the fields its action does, and refuses others")
    func toolArguments() {
        for tool in Context7Tools.all {
            let properties = Set((tool.inputSchema["properties"]?.objectValue ?? [:]).keys)
            #expect(properties == Set(Context7Request.fieldsByAction[tool.action ?? ""] ?? []), "\(tool.name)")
            #expect(tool.inputSchema["additionalProperties"] == false, "\(tool.name)")
        }
    }
}

import HTTPTypes
import Hummingbird
import LoopbackServer
import Logging
import NIOCore
import Synchronization
import WorkerJSON

/// A fake of Context7's public API v2 (`/v2/libs/search`, `/v2/context`), following
/// `docs/context7.md`, for the handler's tests, the benchmarks and end-to-end runs. What it
/// answers is chosen by the library name or id, so one server serves every case at once:
///
/// - `/test/ratelimited`: 429 `rate_limit_exceeded` (`Retry-After: 1`) twice per query, then 200;
/// - `/test/notfinalized`: 202 `library_not_finalized` twice per query, then 200;
/// - `/test/always429`, `/test/always202`, `/test/always503`: that answer (`rate_limit_exceeded`,
///   `library_not_finalized`, `search_failed`) on every call, each with `Retry-After: 0`;
/// - `/test/moved`: 301 `library_redirected` to `/test/newhome`; `/test/loop`: 301 to `/test/loop2`, which
///   redirects again;
/// - `/test/missing`: 404 `library_not_found`; `/test/nosnippets`: 404 `no_snippets_found`;
/// - `/test/flaky`: 503 `search_failed` twice per query, then 200; `/test/down`: always 500;
/// - `/test/slow`: answers after 5 s; `/test/cut`: a body cut off mid-stream;
/// - `/test/forbidden`: 403 `access_denied`; `/test/teapot`: 418 with a text body;
/// - library name `nothing`: 404 `no_libraries_found`; `garbage`: 200 with a body that is not JSON;
///   `noresults`: 200 without a `results` list; `mistyped`: one good entry among entries with fields
///   of the wrong JSON type (`mistypedResults`); `allmistyped`: only such entries;
/// - `Authorization: Bearer ctx7sk-bad`: 401 `invalid_api_key` on every route;
/// - anything else: libraries and snippets made up from the name or id and the query.
///
/// Every answer waits `latency` first. `GET /_stats` returns `{"calls": n}` (upstream calls
/// so far, the `/_` routes not counted).
package final class FakeContext7: Sendable {
    package let latency: Duration
    private let calls = Atomic<Int>(0)
    private let attempts = Mutex<[String: Int]>([:])
    package let requests = Mutex<[(path: String, query: String, authorization: String?)]>([])
    private let recording: Bool

    package init(latency: Duration = .zero, recording: Bool = true) {
        self.latency = latency
        self.recording = recording
    }

    /// Upstream calls answered so far.
    package var callCount: Int { calls.load(ordering: .relaxed) }

    package func router() -> Router<BasicRequestContext> {
        let router = Router()
        router.get("v2/libs/search") { request, _ in try await self.answer(request) { try await self.search(request) } }
        router.get("v2/context") { request, _ in try await self.answer(request) { try await self.context(request) } }
        router.get("_stats") { _, _ in Self.json(["calls": .integer(Int64(self.callCount))]) }
        return router
    }

    private func answer(_ request: Request, _ body: () async throws -> Response) async throws -> Response {
        calls.add(1, ordering: .relaxed)
        if recording {
            requests.withLock { $0.append((request.uri.path, request.uri.query ?? "", request.headers[.authorization])) }
        }
        if latency > .zero { try await Task.sleep(for: latency) }
        if request.headers[.authorization] == "Bearer ctx7sk-bad" {
            return Self.error(.unauthorized, "invalid_api_key", "Invalid API key. Please check your API key.")
        }
        return try await body()
    }

    private func search(_ request: Request) async throws -> Response {
        let name = request.uri.queryParameters.get("libraryName") ?? ""
        let query = request.uri.queryParameters.get("query") ?? ""
        guard !name.isEmpty, !query.isEmpty else {
            return Self.error(.badRequest, "validation_error", "libraryName and query are required")
        }
        switch name {
        case "nothing": return Self.error(.notFound, "no_libraries_found", "No libraries found matching your query")
        case "garbage": return Response(status: .ok, body: .init(byteBuffer: ByteBuffer(string: "{\"results\": [oops")))
        case "noresults": return Self.json(["libraries": []])
        case "mistyped": return Self.json(["results": .array(Self.mistypedResults), "searchFilterApplied": false])
        case "allmistyped": return Self.json(["results": .array(Array(Self.mistypedResults.dropFirst()))])
        default:
            if let scripted = try await scripted(name, key: "search:\(name):\(query)") { return scripted }
        }
        let slug = name.lowercased().filter { $0.isLetter || $0.isNumber || $0 == "-" }
        let results: JSONValue = [
            [
                "id": .string("/\(slug)/\(slug)"), "title": .string(name), "description": .string("The \(name) library."),
                "branch": "main", "lastUpdateDate": "2026-11-01T00:00:00.000Z", "state": "finalized", "totalTokens": 120_000,
                "totalSnippets": 640, "stars": 12000, "trustScore": 9, "benchmarkScore": 87.5, "versions": ["v2.0.0", "v1.9.0"],
            ],
            [
                "id": .string("/\(slug)-community/\(slug)-docs"), "title": .string("\(name) docs"), "description": "Community notes.",
                "totalSnippets": -1, "trustScore": 3, "benchmarkScore": 0,
            ],
        ]
        return Self.json(["results": results, "searchFilterApplied": false])
    }

    private func context(_ request: Request) async throws -> Response {
        let id = request.uri.queryParameters.get("libraryId") ?? ""
        let query = request.uri.queryParameters.get("query") ?? ""
        guard !id.isEmpty, !query.isEmpty else { return Self.error(.badRequest, "validation_error", "libraryId and query are required") }
        guard request.uri.queryParameters.get("type") ?? "txt" == "txt" else {
            return Self.error(.badRequest, "validation_error", "this fake serves type=txt only")
        }
        if let scripted = try await scripted(id, key: "context:\(id):\(query)") { return scripted }
        return Response(
            status: .ok, headers: [.contentType: "text/plain; charset=utf-8"],
            body: .init(byteBuffer: ByteBuffer(string: Self.snippets(id: id, query: query))))
    }

    /// The scripted behaviours; nil for a normal answer.
    private func scripted(_ name: String, key: String) async throws -> Response? {
        func firstTimes(_ count: Int) -> Bool {
            attempts.withLock { attempts in
                attempts[key, default: 0] += 1
                return attempts[key]! <= count
            }
        }
        switch name {
        case "/test/ratelimited":
            guard firstTimes(2) else { return nil }
            var response = Self.error(.tooManyRequests, "rate_limit_exceeded", "Rate limit exceeded")
            response.headers[.retryAfter] = "1"
            response.headers[HTTPField.Name("RateLimit-Limit")!] = "60"
            response.headers[HTTPField.Name("RateLimit-Remaining")!] = "0"
            response.headers[HTTPField.Name("RateLimit-Reset")!] = "1"
            return response
        case "/test/notfinalized":
            guard firstTimes(2) else { return nil }
            return Self.error(.accepted, "library_not_finalized", "Library is being processed")
        case "/test/always429", "/test/always202", "/test/always503":
            var response =
                switch name {
                case "/test/always429": Self.error(.tooManyRequests, "rate_limit_exceeded", "Rate limit exceeded")
                case "/test/always202": Self.error(.accepted, "library_not_finalized", "Library is being processed")
                default: Self.error(.serviceUnavailable, "search_failed", "Search temporarily unavailable")
                }
            response.headers[.retryAfter] = "0"
            return response
        case "/test/moved":
            return Self.json(["error": "library_redirected", "message": "Library moved", "redirectUrl": "/test/newhome"], status: .movedPermanently)
        case "/test/loop", "/test/loop2":
            return Self.json(
                ["error": "library_redirected", "message": "Library moved", "redirectUrl": .string(name == "/test/loop" ? "/test/loop2" : "/test/loop")],
                status: .movedPermanently)
        case "/test/missing": return Self.error(.notFound, "library_not_found", "Library not found")
        case "/test/nosnippets": return Self.error(.notFound, "no_snippets_found", "No snippets found")
        case "/test/flaky":
            guard firstTimes(2) else { return nil }
            return Self.error(.serviceUnavailable, "search_failed", "Search temporarily unavailable")
        case "/test/down": return Self.error(.internalServerError, "internal_error", "Internal server error")
        case "/test/slow":
            try await Task.sleep(for: .seconds(5))
            return nil
        case "/test/forbidden": return Self.error(.forbidden, "access_denied", "Access to this library is denied")
        case "/test/teapot":
            return Response(status: .init(code: 418), body: .init(byteBuffer: ByteBuffer(string: "I'm a teapot")))
        case "/test/cut":
            return Response(
                status: .ok, headers: [.contentType: "text/plain"],
                body: .init { writer in
                    try await writer.write(ByteBuffer(string: "### Half a snippet\n\n```swift\nlet x ="))
                    throw CancellationError()
                })
        default:
            return nil
        }
    }

    /// A text body of `bytes` (a multiple of 64 KB), written 64 KB at a time and counted; with
    /// `declared` its size is sent as `Content-Length`, else it goes chunked.
    /// A search answer's entries: the first as Context7 documents it, every other with one field
    /// of the wrong JSON type (or not an object at all).
    package static let mistypedResults: [JSONValue] = [
        ["id": "/good/one", "title": "Good", "description": "Fine.", "totalSnippets": 10, "trustScore": 8, "versions": ["v1"]],
        ["id": 42, "title": "Numeric id"],
        ["id": "/bad/title", "title": 7],
        ["id": "/bad/versions", "title": "Bad versions", "versions": "v1.0.0"],
        ["id": "/bad/trust", "title": "Bad trust", "trustScore": "high"],
        ["id": "/bad/snippets", "title": "Bad snippets", "totalSnippets": ["many"]],
        "not an object",
    ]

    /// Eight snippets in Context7's text shape, each about 400 bytes, separated by rule lines.
    package static func snippets(id: String, query: String) -> String {
        (1...8).map { index in
            """
            ### \(query) (\(index))

            Source: https://github.com\(id)/blob/main/docs/guide-\(index).md

            How to \(query) with \(id), part \(index). \(String(repeating: "Details of the step. ", count: 8))

            ```swift
            let step\(index) = try await client.run("\(query)", part: \(index))
            ```
            """
        }.joined(separator: "\n\n--------------------------------\n\n")
    }

    static func error(_ status: HTTPResponse.Status, _ code: String, _ message: String) -> Response {
        json(["error": .string(code), "message": .string(message)], status: status)
    }

    static func json(_ value: JSONValue, status: HTTPResponse.Status = .ok) -> Response {
        Response(
            status: status, headers: [.contentType: "application/json"],
            body: .init(byteBuffer: ByteBuffer(bytes: (try? value.serialized()) ?? [])))
    }

    /// Serves on `host:port` (0: a free port) until cancelled; `onListening` gets the port.
    package func serve(host: String = "127.0.0.1", port: Int = 0, onListening: @escaping @Sendable (Int) -> Void) async throws {
        try await LoopbackServer.serve(router(), host: host, port: port, label: "fake-context7", onListening: onListening)
    }

    /// Serves on a free loopback port for the duration of `body`.
    package func run<T: Sendable>(_ body: @Sendable (_ base: String) async throws -> T) async throws -> T {
        try await runOnLoopback(router(), label: "fake-context7", body)
    }
}


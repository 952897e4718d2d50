import CurlHTTP
import Synchronization
import WorkerJSON

/// A client of one upstream MCP server over streamable HTTP, as the gateway needs it: list its
/// tools (every page) and call one, passing its progress on. Stateless servers (ours) answer at
/// once; a server that wants a session gets `initialize` first, and its `Mcp-Session-Id` is sent
/// with every request after (made again when the server forgets it: 404).
final class MCPUpstreamClient: Sendable {
    let url: String
    let apiKey: String?
    let http: CurlHTTPClient
    let timeout: Duration
    private let session = Mutex<String?>(nil)
    private let nextID = Atomic<Int>(1)
    static let protocolVersion = "2025-11-25"

    /// The URL as errors and logs show it: without credentials.
    let shown: String

    /// Sent with every request: the gateway names itself (`GatewayChain`), so a server that is
    /// this gateway refuses, instead of listing its own tools back under a longer name each time.
    let extraHeaders: [(name: String, value: String)]

    init(url: String, apiKey: String?, http: CurlHTTPClient, timeout: Duration, headers: [(name: String, value: String)] = []) {
        self.url = url
        self.shown = URLCredentials.redacted(url)
        self.apiKey = apiKey
        self.http = http
        self.timeout = timeout
        self.extraHeaders = headers
    }

    struct Failure: Error, CustomStringConvertible {
        let description: String
        /// The server answered (an error, or something that is not MCP); false: it was not reached.
        var reached = true
    }

    /// Every tool the server lists (following `nextCursor`, at most 50 pages), held to
    /// `maxTools` tools and `maxAnswer` bytes in all: a server listing without end must not grow
    /// the gateway by 50 pages of 16 MB.
    func listTools() async throws -> [JSONValue] {
        var tools: [JSONValue] = []
        var bytes = 0
        var cursor: JSONValue?
        for _ in 0..<50 {
            var params: [String: JSONValue] = [:]
            if let cursor { params["cursor"] = cursor }
            let result = try await request("tools/list", params: .object(params), progress: nil)
            let page = result["tools"]?.arrayValue ?? []
            bytes += page.reduce(0) { $0 + ((try? $1.serializedCount()) ?? 0) }
            tools += page
            guard tools.count <= Self.maxTools, bytes <= Self.maxAnswer else {
                throw Failure(
                    description: "the server lists more than \(Self.maxTools) tools or \(Self.maxAnswer >> 20) MB of them; the gateway takes no more from one server")
            }
            guard let next = result["nextCursor"], next != .null else { break }
            cursor = next
        }
        return tools
    }

    /// `tools/call`: the server's result as it is. Progress notifications go to `progress`.
    func callTool(_ name: String, arguments: JSONValue, progress: (@Sendable (JSONValue) -> Void)?) async throws -> JSONValue {
        try await request("tools/call", params: ["name": .string(name), "arguments": arguments], progress: progress)
    }

    private func request(_ method: String, params: JSONValue, progress: (@Sendable (JSONValue) -> Void)?) async throws -> JSONValue {
        do {
            return try await send(method, params: params, progress: progress)
        } catch let failure as SessionGone {
            // The server forgot the session (restarted, or a replica that never had it): again, once.
            _ = failure
            session.withLock { $0 = nil }
            return try await send(method, params: params, progress: progress)
        }
    }

    private struct SessionGone: Error {}

    private func send(_ method: String, params: JSONValue, progress: (@Sendable (JSONValue) -> Void)?) async throws -> JSONValue {
        let id = nextID.add(1, ordering: .relaxed).oldValue
        var params = params
        if progress != nil, case .object(var fields) = params {
            fields["_meta"] = ["progressToken": .integer(Int64(id))]
            params = .object(fields)
        }
        let message: JSONValue = ["jsonrpc": "2.0", "id": .integer(Int64(id)), "method": .string(method), "params": params]
        var (status, headers, body) = try await post(message, id: id, progress: progress)
        if status == 400 || status == 401, session.withLock({ $0 }) == nil, method != "initialize", !body.isEmpty,
            String(decoding: body, as: UTF8.self).lowercased().contains("session")
        {
            try await initialize()
            (status, headers, body) = try await post(message, id: id, progress: progress)
        } else if status == 404, session.withLock({ $0 }) != nil {
            throw SessionGone()
        }
        _ = headers
        guard (200..<300).contains(status) else {
            throw Failure(description: "\(method) at \(shown) answered HTTP \(status): \(Self.excerpt(body))")
        }
        let reply = try Self.reply(body)
        if let error = reply["error"] {
            throw Failure(description: "\(method) at \(shown) failed: \(error["message"]?.stringValue ?? Self.excerpt(Array((try? error.serialized()) ?? [])))")
        }
        guard let result = reply["result"] else { throw Failure(description: "\(method) at \(shown) answered without a result") }
        return result
    }

    private func initialize() async throws {
        let message: JSONValue = [
            "jsonrpc": "2.0", "id": 0, "method": "initialize",
            "params": ["protocolVersion": .string(Self.protocolVersion), "capabilities": [:], "clientInfo": ["name": "gateway", "version": "1"]],
        ]
        let (status, headers, body) = try await post(message)
        guard (200..<300).contains(status) else {
            throw Failure(description: "initialize at \(shown) answered HTTP \(status): \(Self.excerpt(body))")
        }
        if let id = headers.first(where: { $0.name.lowercased() == "mcp-session-id" })?.value { session.withLock { $0 = id } }
        _ = try? await post(["jsonrpc": "2.0", "method": "notifications/initialized"])
    }

    /// Posts one message. A JSON answer is read whole; an SSE one is read as it comes, its
    /// progress notifications passed on at once, and only the event carrying the reply to `id` kept.
    private func post(
        _ message: JSONValue, id: Int? = nil, progress: (@Sendable (JSONValue) -> Void)? = nil
    ) async throws -> (Int, [(name: String, value: String)], [UInt8]) {
        var headers: [(name: String, value: String)] = [
            ("Content-Type", "application/json"), ("Accept", "application/json, text/event-stream"), ("MCP-Protocol-Version", Self.protocolVersion),
        ]
        if let key = apiKey { headers.append(("Authorization", "Bearer \(key)")) }
        if let id = session.withLock({ $0 }) { headers.append(("Mcp-Session-Id", id)) }
        headers += extraHeaders
        let request = HTTPClientRequest(method: "POST", url: url, headers: headers, body: try message.serialized(), connectTimeout: .seconds(5), timeout: timeout)
        let response: HTTPClientStreamingResponse
        do {
            response = try await http.stream(request)
        } catch let error as HTTPClientError where !error.isCancellation {
            // libcurl's words name the URL as given: without its credentials here.
            throw Failure(description: "\(error)".replacing(url, with: shown), reached: false)
        }
        let sse = response.head.header("Content-Type")?.lowercased().hasPrefix("text/event-stream") == true
        var events = SSEEvents()
        var body: [UInt8] = []
        for try await chunk in response.body {
            guard sse, (200..<300).contains(response.head.status) else {
                body += chunk
                if body.count > Self.maxAnswer { throw Failure(description: "the answer from \(shown) is over \(Self.maxAnswer) bytes") }
                continue
            }
            guard events.buffered + chunk.count <= Self.maxAnswer else {
                throw Failure(description: "the answer from \(shown) holds over \(Self.maxAnswer) bytes without the reply")
            }
            for data in events.feed(chunk) {
                guard let message = try? JSONValue.parse(data) else { continue }
                if message["method"] == "notifications/progress", let params = message["params"] {
                    progress?(params)
                } else if message["id"] != nil, id == nil || message["id"]?.intValue == id {
                    return (response.head.status, response.head.headers, data)
                }
            }
        }
        return (response.head.status, response.head.headers, body)
    }

    static let maxAnswer = 16 << 20
    static let maxTools = 1_000

    /// The reply in an answer body: a JSON-RPC message, or an error naming what came instead.
    static func reply(_ body: [UInt8]) throws -> JSONValue {
        guard let json = try? JSONValue.parse(body), json.objectValue != nil else {
            throw Failure(description: "the answer is not a JSON-RPC message: \(excerpt(body))")
        }
        return json
    }

    static func excerpt(_ body: [UInt8]) -> String {
        let text = String(decoding: body.prefix(200), as: UTF8.self)
        return body.count > 200 ? text + "…" : text
    }
}

/// Server-sent events cut from a byte stream: each event's `data:` lines joined.
struct SSEEvents {
    private var pending: [UInt8] = []
    /// How far `pending` was searched for an event's end (each byte is looked at once).
    private var scanned = 0

    /// Bytes held for an event not yet complete.
    var buffered: Int { pending.count }

    /// The data of every event completed by `chunk`.
    mutating func feed(_ chunk: some Collection<UInt8>) -> [[UInt8]] {
        pending += chunk
        var events: [[UInt8]] = []
        while let end = Self.eventEnd(pending, from: scanned) {
            let event = pending[..<end.start]
            var data: [UInt8] = []
            for line in event.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
                var line = line
                if line.last == UInt8(ascii: "\r") { line = line.dropLast() }
                guard line.starts(with: Array("data:".utf8)) else { continue }
                var value = line.dropFirst(5)
                if value.first == UInt8(ascii: " ") { value = value.dropFirst() }
                if !data.isEmpty { data.append(UInt8(ascii: "\n")) }
                data += value
            }
            pending.removeSubrange(..<end.next)
            scanned = 0
            if !data.isEmpty { events.append(data) }
        }
        // A blank line may begin in the last two bytes, and end in the next chunk.
        scanned = max(0, pending.count - 2)
        return events
    }

    /// Where the first event ends (a blank line: `\n\n` or `\n\r\n`).
    private static func eventEnd(_ bytes: [UInt8], from start: Int) -> (start: Int, next: Int)? {
        var index = start
        while index + 1 < bytes.count {
            if bytes[index] == UInt8(ascii: "\n") {
                if bytes[index + 1] == UInt8(ascii: "\n") { return (index, index + 2) }
                if index + 2 < bytes.count, bytes[index + 1] == UInt8(ascii: "\r"), bytes[index + 2] == UInt8(ascii: "\n") { return (index, index + 3) }
            }
            index += 1
        }
        return nil
    }
}

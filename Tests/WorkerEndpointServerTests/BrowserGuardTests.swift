import Testing
import TestSupport
import WorkerJSON

@testable import WorkerEndpointServer
@testable import WorkerRuntime

/// The endpoint server from a web browser's point of view: what any page may send without a
/// CORS preflight (a simple request: GET, or POST with `text/plain` or a form body), with the
/// Host and Origin a browser puts on it, over real sockets.
@Suite("Requests a web page can make", .defaultPass)
struct BrowserGuardTests {
    static let body = #"{"input":{"note":"from a web page"}}"#
    static let simpleTypes = ["text/plain;charset=UTF-8", "application/x-www-form-urlencoded", "multipart/form-data; boundary=b"]

    @Test("without a key, a page cannot drive a local worker: simple POSTs with a rebound Host are 421, from another site 403, non-JSON bodies 415, and nothing runs")
    func simpleRequests() async throws {
        try await withLiveServer { port in
            let local = "127.0.0.1:\(port)"
            for route in ["/run", "/runsync", "/v2/x/runsync", "/v2/x/run", "/openai/v1/chat/completions", "/cancel/x", "/purge-queue"] {
                for type in Self.simpleTypes {
                    // DNS rebinding: the page's own name now resolves to 127.0.0.1, so Host and Origin are its own.
                    let rebound = try await exchange(
                        port, rawRequest("POST", route, host: "evil.com:\(port)", headers: [("Origin", "http://evil.com:\(port)"), ("Content-Type", type)], body: Self.body))
                    #expect(rebound.status == 421, "\(route) \(type): \(rebound)")
                    // OpenAI routes answer in OpenAI's error shape (`error.message`), the others `{"error": "…"}`.
                    let message = { (json: JSONValue?) in json?["error"]?.stringValue ?? json?["error"]?["message"]?.stringValue }
                    #expect(message(rebound.json)?.contains("evil.com") == true, "\(rebound)")
                    if route.hasPrefix("/openai") { #expect(rebound.json?["error"]?["type"] == "invalid_request_error", "\(rebound)") }
                    // A page of another site posting to the worker's address: the browser names its origin.
                    let crossSite = try await exchange(
                        port, rawRequest("POST", route, host: local, headers: [("Origin", "http://evil.com"), ("Content-Type", type)], body: Self.body))
                    #expect(crossSite.status == 403, "\(route) \(type): \(crossSite)")
                    // No Origin (not a browser's cross-site request), but a body that is not JSON: refused, naming its type.
                    let untyped = try await exchange(port, rawRequest("POST", route, host: local, headers: [("Content-Type", type)], body: Self.body))
                    #expect(untyped.status == 415, "\(route) \(type): \(untyped)")
                    #expect(message(untyped.json)?.contains(type) == true, "\(untyped)")
                }
            }
            // Reading answers by rebinding: GETs with the page's Host are refused too.
            for route in ["/status/x", "/v2/x/stream/x", "/health", "/metrics", "/openai/v1/models"] {
                let rebound = try await exchange(port, rawRequest("GET", route, host: "evil.com:\(port)", headers: [("Origin", "http://evil.com:\(port)")]))
                #expect(rebound.status == 421, "\(route): \(rebound)")
            }
            // Nothing was queued, run or cancelled.
            let health = try await exchange(port, rawRequest("GET", "/health", host: local))
            #expect(health.status == 200, "\(health)")
            for count in ["completed", "failed", "inQueue", "inProgress"] {
                #expect(health.json?["jobs"]?[count] == 0, "\(count): \(health)")
            }
        }
    }

    @Test("a CORS preflight from another site grants nothing, and the JSON POST it asks about is refused anyway")
    func preflight() async throws {
        try await withLiveServer { port in
            for host in ["127.0.0.1:\(port)", "evil.com:\(port)"] {
                let answer = try await exchange(
                    port,
                    rawRequest(
                        "OPTIONS", "/v2/x/runsync", host: host,
                        headers: [
                            ("Origin", "http://evil.com"), ("Access-Control-Request-Method", "POST"),
                            ("Access-Control-Request-Headers", "content-type, authorization"),
                        ]))
                #expect(!(200..<300).contains(answer.status), "\(host): \(answer)")
                for name in ["access-control-allow-origin", "access-control-allow-methods", "access-control-allow-headers", "access-control-allow-credentials"] {
                    #expect(answer.header(name) == nil, "\(host): \(answer)")
                }
            }
            let post = try await exchange(
                port,
                rawRequest(
                    "POST", "/v2/x/runsync", host: "127.0.0.1:\(port)", headers: [("Origin", "http://evil.com"), ("Content-Type", "application/json")],
                    body: Self.body))
            #expect(post.status == 403, "\(post)")
            #expect(post.header("access-control-allow-origin") == nil)
        }
    }

    @Test("what clients send still works: JSON bodies (any charset, +json, or untyped), bodiless POSTs with a JSON type, the worker's own origin, loopback names")
    func clientsStillWork() async throws {
        try await withLiveServer { port in
            let local = "127.0.0.1:\(port)"
            for type in ["application/json", "application/json; charset=utf-8", "Application/JSON", "application/vnd.api+json"] {
                let answer = try await exchange(port, rawRequest("POST", "/v2/x/runsync", host: local, headers: [("Content-Type", type)], body: Self.body))
                #expect(answer.status == 200, "\(type): \(answer)")
                #expect(answer.json?["status"] == "COMPLETED", "\(type): \(answer)")
            }
            let untyped = try await exchange(port, rawRequest("POST", "/runsync", host: local, body: Self.body))
            #expect(untyped.json?["status"] == "COMPLETED", "\(untyped)")
            // The runpod client sends Content-Type: application/json on every request, bodiless ones included.
            let cancel = try await exchange(port, rawRequest("POST", "/v2/x/cancel/nope", host: local, headers: [("Content-Type", "application/json")], body: ""))
            #expect(cancel.status == 404, "\(cancel)")
            let bare = try await exchange(port, rawRequest("POST", "/cancel/nope", host: local))
            #expect(bare.status == 404, "\(bare)")
            let status = try await exchange(port, rawRequest("GET", "/status/nope", host: local, headers: [("Content-Type", "text/plain")]))
            #expect(status.status == 404, "\(status)")
            // A page the worker's own origin serves, and the other loopback names.
            let sameOrigin = try await exchange(
                port, rawRequest("POST", "/runsync", host: local, headers: [("Origin", "http://\(local)"), ("Content-Type", "application/json")], body: Self.body))
            #expect(sameOrigin.status == 200, "\(sameOrigin)")
            for host in ["localhost:\(port)", "[::1]:\(port)", "LOCALHOST"] {
                let answer = try await exchange(port, rawRequest("GET", "/health", host: host))
                #expect(answer.status == 200, "\(host): \(answer)")
            }
            // The health check answers whatever name reached the worker (the platform's checks do).
            let ping = try await exchange(port, rawRequest("GET", "/ping", host: "10.1.2.3:\(port)", headers: [("Origin", "http://evil.com")]))
            #expect(ping.status == 200, "\(ping)")
        }
    }

    @Test("load balancing: any Host is answered (RunPod's proxy is the only way in) unless MCP_ALLOWED_HOSTS names them; a foreign Origin is still 403")
    func loadBalancing() async throws {
        let server = ServerConfiguration(kind: .loadBalancing, host: "127.0.0.1", port: 0, allowUnauthenticated: true)
        try await withLiveServer(environment: ["RUNPOD_ENDPOINT_ID": "abc123"], server: server) { port in
            for host in ["abc123.api.runpod.ai", "other.api.runpod.ai", "127.0.0.1:\(port)"] {
                let answer = try await exchange(port, rawRequest("POST", "/runsync", host: host, headers: [("Content-Type", "application/json")], body: Self.body))
                #expect(answer.status == 200, "\(host): \(answer)")
            }
            let proxied = try await exchange(port, rawRequest("POST", "/runsync", host: "10.0.0.7:8000", headers: [("Content-Type", "application/json")], body: Self.body))
            #expect(proxied.status == 200, "\(proxied)")
            let browser = try await exchange(
                port, rawRequest("POST", "/runsync", host: "abc123.api.runpod.ai", headers: [("Content-Type", "application/json"), ("Origin", "https://evil.example")], body: Self.body))
            #expect(browser.status == 403, "\(browser)")
        }
        try await withLiveServer(environment: ["RUNPOD_ENDPOINT_ID": "abc123", "MCP_ALLOWED_HOSTS": "tools.example.com"], server: server) { port in
            let named = try await exchange(port, rawRequest("POST", "/runsync", host: "tools.example.com", headers: [("Content-Type", "application/json")], body: Self.body))
            #expect(named.status == 200, "\(named)")
            let foreign = try await exchange(port, rawRequest("POST", "/runsync", host: "10.0.0.7:8000", headers: [("Content-Type", "application/json")], body: Self.body))
            #expect(foreign.status == 421, "\(foreign)")
            let ping = try await exchange(port, rawRequest("GET", "/ping", host: "10.0.0.7:8000"))
            #expect(ping.status == 200, "\(ping)")
        }
    }

    @Test("with an API key any Host is answered (a rebinding page has no key), but another site's Origin is 403 and the key is still required")
    func withKey() async throws {
        try await withLiveServer(server: ServerConfiguration(apiKey: "s3cret")) { port in
            let key = ("Authorization", "Bearer s3cret")
            let json = ("Content-Type", "application/json")
            let answer = try await exchange(port, rawRequest("POST", "/runsync", host: "10.1.2.3:8000", headers: [key, json], body: Self.body))
            #expect(answer.status == 200, "\(answer)")
            let foreign = try await exchange(
                port, rawRequest("POST", "/runsync", host: "10.1.2.3:8000", headers: [key, json, ("Origin", "https://evil.example")], body: Self.body))
            #expect(foreign.status == 403, "\(foreign)")
            let keyless = try await exchange(port, rawRequest("POST", "/runsync", host: "10.1.2.3:8000", headers: [json], body: Self.body))
            #expect(keyless.status == 401, "\(keyless)")
        }
    }

    @Test("Expect: 100-continue on a request refused from its head gets the refusal at once, never a 100 Continue first")
    func expectContinueRefused() async throws {
        let asking = [("Content-Type", "application/json"), ("Content-Length", "37"), ("Expect", "100-continue")]
        try await withLiveServer { port in
            let local = "127.0.0.1:\(port)"
            let refused: [(String, [(String, String)], String)] = [
                ("evil.com:\(port)", asking, "HTTP/1.1 421"),
                (local, asking + [("Origin", "http://evil.com")], "HTTP/1.1 403"),
                (local, [("Content-Type", "text/plain"), ("Content-Length", "37"), ("Expect", "100-continue")], "HTTP/1.1 415"),
            ]
            for (host, headers, status) in refused {
                let head = try await Self.firstHead(port, host: host, headers)
                #expect(head.hasPrefix(status), "\(head)")
                #expect(head.lowercased().contains("connection: close"), "\(head)")
            }
            // A request the guard lets through is still invited at once.
            let invited = try await Self.firstHead(port, host: local, asking)
            #expect(invited.hasPrefix("HTTP/1.1 100 Continue"), "\(invited)")
        }
        try await withLiveServer(server: ServerConfiguration(apiKey: "s3cret")) { port in
            let head = try await Self.firstHead(port, host: "127.0.0.1:\(port)", asking)
            #expect(head.hasPrefix("HTTP/1.1 401"), "\(head)")
        }
    }

    /// The first response head for a request whose body is held back until invited.
    static func firstHead(_ port: Int, host: String, _ headers: [(String, String)]) async throws -> String {
        try await blocking {
            let connection = try RawConnection(port: port)
            connection.write(rawRequest("POST", "/runsync", host: host, headers: headers))
            return connection.read(timeout: .seconds(5)) { $0.contains("\r\n\r\n") }.text
        }
    }
}

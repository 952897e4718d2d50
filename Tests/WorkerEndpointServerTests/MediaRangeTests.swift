import HTTPTypes
import Testing
import TestSupport

@testable import WorkerEndpointServer
@testable import WorkerRuntime

@Suite("Media types, Accept ranges and the request guard", .defaultPass)
struct MediaRangeTests {
    @Test("Content-Type: JSON with any charset or as a +json type; anything else (or malformed) is not JSON")
    func contentTypes() {
        for json in ["application/json", "application/json; charset=utf-8", "Application/JSON", "application/json;charset=\"utf-8\"", "application/vnd.api+json"] {
            #expect(MediaRange(json)?.isJSON == true, "\(json)")
        }
        for other in ["text/plain", "text/plain;charset=UTF-8", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/jsonx", "text/json"] {
            #expect(MediaRange(other)?.isJSON == false, "\(other)")
        }
        for malformed in ["json", "", "application/", "/json", "application/json;q=2", "application/json;q=0.1234"] {
            #expect(MediaRange(malformed) == nil, "\(malformed)")
        }
    }

    @Test(
        "Accept: a range with q=0 refuses what it names, and the most specific range covering a type decides",
        arguments: [
            ("application/json", true), ("application/json;q=0", false), ("application/json; q=0", false), ("application/json;Q=0", false),
            ("application/json;q=0.000", false), ("application/json;q=0.001", true), ("application/json;q=0.5, text/event-stream", true),
            ("application/json;q=0, text/event-stream;q=0", false), ("application/json;q=0, */*", false), ("*/*;q=0, application/json", true),
            ("*/*", true), ("application/*", true), ("application/*;q=0", false), ("text/*", false), ("text/html", false),
            ("text/html;x=\"a,application/json\"", false), ("garbage, application/json", true), ("application/json;q=oops", false),
        ])
    func accept(header: String, takesJSON: Bool) {
        #expect(MediaRange.accepts(MediaRange.list(header), type: "application", subtype: "json") == takesJSON)
    }

    @Test("the guard: Host and Origin by the policy (health check exempt); a body's type, never a bodiless request's")
    func guardDecisions() throws {
        let guarded = RequestGuard(policy: HostOriginPolicy(server: ServerConfiguration(), endpointID: nil), healthPath: "/ping")
        let json: HTTPFields = [.contentType: "application/json", .contentLength: "2"]
        #expect(guarded.refusal(path: "/run", authority: "127.0.0.1:8000", headers: json) == nil)
        #expect(guarded.refusal(path: "/run", authority: "evil.com", headers: json)?.status.code == 421)
        #expect(guarded.refusal(path: "/ping", authority: "evil.com", headers: json) == nil)
        #expect(guarded.refusal(path: "/run", authority: nil, headers: json) == nil, "HTTP/1.0 without Host")
        #expect(guarded.refusal(path: "/status/x", authority: "localhost", headers: [.origin: "http://evil.com"])?.status.code == 403)
        let form: HTTPFields = [.contentType: "application/x-www-form-urlencoded", .contentLength: "3"]
        #expect(guarded.refusal(path: "/run", authority: "localhost", headers: form)?.status.code == 415)
        let chunked: HTTPFields = [.contentType: "text/plain", .transferEncoding: "chunked"]
        #expect(guarded.refusal(path: "/run", authority: "localhost", headers: chunked)?.status.code == 415)
        let bodiless: HTTPFields = [.contentType: "text/plain", .contentLength: "0"]
        #expect(guarded.refusal(path: "/cancel/x", authority: "localhost", headers: bodiless) == nil)
        #expect(guarded.refusal(path: "/run", authority: "localhost", headers: [.contentLength: "9"]) == nil, "an untyped body is parsed as JSON")
    }
}

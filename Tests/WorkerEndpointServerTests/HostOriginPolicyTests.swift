import Testing
import TestSupport

@testable import WorkerEndpointServer

/// The checks every request meets, on their byte-level fast paths.
@Suite("Host and Content-Type checks as every request meets them", .defaultPass)
struct HostOriginPolicyTests {
    @Test("Authorities: ports, IPv6 brackets, case, *.suffix and exact names")
    func authorities() {
        let policy = HostOriginPolicy(hosts: ["localhost", "127.0.0.1", "::1", "*.internal", "Tools.Example.com"], origins: [])
        for allowed in ["localhost", "LOCALHOST:8000", "127.0.0.1:41871", "[::1]:9000", "[::1]", "::1", "a.b.internal", "X.INTERNAL:1",
            "tools.example.com", "TOOLS.example.COM:443"]
        {
            #expect(policy.check(host: allowed, origin: nil) == nil, "\(allowed)")
        }
        for refused in ["evil.com", "internal", ".internal", "localhost.evil.com", "127.0.0.2:80", "[::2]:80", "tools.example.co", "",
            "localhost:80@evil.com", "127.0.0.1:80, evil.com", "localhost:80.evil.com"]
        {
            #expect(policy.check(host: refused, origin: nil)?.status == 421, "\(refused)")
        }
        for origin in ["http://localhost:80.evil.com", "http://127.0.0.1:80@evil.com", "http://evil.com"] {
            #expect(policy.check(host: "localhost:8000", origin: origin)?.status == 403, "\(origin)")
        }
        #expect(policy.check(host: "localhost:8000", origin: "http://localhost:8000") == nil)
        let any = HostOriginPolicy(hosts: ["localhost", "*"], origins: [])
        #expect(any.check(host: "evil.com:1", origin: nil) == nil)
        #expect(any.check(host: "evil.com:1", origin: "https://other.example")?.status == 403)
    }

    @Test("Content types: application/json in any case with parameters, +json types; anything else is not JSON")
    func contentTypes() {
        for json in ["application/json", "Application/JSON", "application/json; charset=utf-8", "application/json;charset=UTF-8",
            "application/vnd.api+json", "application/json-seq+json"]
        {
            #expect(MediaRange.isJSON(contentType: json), "\(json)")
        }
        for other in ["application/jsonx", "application/json-patch", "text/plain", "application/x-www-form-urlencoded", "", "json"] {
            #expect(!MediaRange.isJSON(contentType: other), "\(other)")
        }
    }
}

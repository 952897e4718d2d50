import Crypto
import JWTKit
import Logging
import Synchronization
import TestSupport
import Testing
import WorkerJSON
@testable import MCPAuth

@Suite("MCP token verification", .defaultPass)
struct TokenVerifierTests {
    static let now = 1_900_000_000.0

    func verifier(_ issuer: FakeIssuer, apiKey: String? = nil, configure: (inout MCPAuthSettings) -> Void = { _ in }) -> TokenVerifier {
        var settings = MCPAuthSettings(issuer: FakeIssuer.issuer, resource: FakeIssuer.resource)
        settings.requiredScopes = ["mcp:tools"]
        configure(&settings)
        return TokenVerifier(settings: settings, http: issuer, apiKey: apiKey, logger: Logger(label: "test"), wallClock: { Self.now })
    }

    func refusal(_ verifier: TokenVerifier, _ authorization: String?) async -> AuthRefusal? {
        do {
            _ = try await verifier.authenticate(authorization: authorization, tokenInQuery: false)
            return nil
        } catch {
            return error
        }
    }

    @Test("A good token is let through with its scopes, and verified once")
    func good() async throws {
        let issuer = FakeIssuer()
        let verifier = verifier(issuer)
        let token = try await issuer.token(TestClaims())
        let grant = try await verifier.authenticate(authorization: "Bearer \(token)", tokenInQuery: false)
        #expect(grant.scopes == ["mcp:tools", "memory:write"] && grant.subject == "alice")
        #expect(grant.validUntil == 2_000_000_060)
        _ = try await verifier.authenticate(authorization: "bearer \(token)", tokenInQuery: false)
        // The scheme in any case, spaces before the token; and only "Bearer" followed by a space.
        _ = try await verifier.authenticate(authorization: "BeArEr   \(token)", tokenInQuery: false)
        #expect(await refusal(verifier, "Bearer\(token)")?.message.contains("must be Bearer") == true)
        #expect(await refusal(verifier, "Bearex \(token)")?.message.contains("must be Bearer") == true)
        #expect(await refusal(verifier, "Bearer \(token), Bearer \(token)")?.message.contains("one Authorization header") == true)
        #expect(issuer.jwksFetches == 1)
        // `scp` as an array (Entra ID, Okta) counts too; `aud` may be one string.
        struct Scp: JWTPayload {
            var iss = FakeIssuer.issuer, aud = FakeIssuer.resource + "/", exp = 2_000_000_000.0, scp = ["mcp:tools"]
            func verify(using algorithm: some JWTAlgorithm) async throws {}
        }
        let (kid, key) = issuer.state.withLock { $0.keys[0] }
        let collection = JWTKeyCollection()
        await collection.add(ecdsa: key, kid: JWKIdentifier(string: kid))
        let other = try await collection.sign(Scp(), kid: JWKIdentifier(string: kid))
        #expect(try await verifier.authenticate(authorization: "Bearer \(other)", tokenInQuery: false).scopes == ["mcp:tools"])
    }

    @Test("Times, issuer and audience are checked, with the leeway")
    func claims() async throws {
        let issuer = FakeIssuer()
        let verifier = verifier(issuer)
        var claims = TestClaims()
        claims.exp = Self.now - 61
        #expect(await refusal(verifier, "Bearer \(try await issuer.token(claims))")?.message.contains("expired") == true)
        claims.exp = Self.now - 30  // within the leeway
        #expect(await refusal(verifier, "Bearer \(try await issuer.token(claims))") == nil)
        claims = TestClaims()
        claims.exp = nil
        #expect(await refusal(verifier, "Bearer \(try await issuer.token(claims))")?.message.contains("no exp") == true)
        claims = TestClaims()
        claims.nbf = Self.now + 120
        #expect(await refusal(verifier, "Bearer \(try await issuer.token(claims))")?.message.contains("nbf") == true)
        claims = TestClaims()
        claims.iss = "https://evil.example"
        #expect(await refusal(verifier, "Bearer \(try await issuer.token(claims))")?.message.contains("issued by https://evil.example") == true)
        claims = TestClaims()
        claims.aud = ["https://other.example.com/mcp"]
        let wrongAudience = await refusal(verifier, "Bearer \(try await issuer.token(claims))")
        #expect(wrongAudience?.status == 401 && wrongAudience?.message.contains("not this server") == true)
        claims.aud = nil
        #expect(await refusal(verifier, "Bearer \(try await issuer.token(claims))")?.message.contains("no audience") == true)
    }

    @Test("Hostile times never crash: 1e300, -1e300, a string nbf")
    func hostileTimes() async throws {
        let issuer = FakeIssuer()
        let verifier = verifier(issuer)
        struct Odd: JWTPayload {
            var iss = FakeIssuer.issuer, aud = FakeIssuer.resource, scope = "mcp:tools"
            var exp: JSONValue, nbf: JSONValue?
            func verify(using algorithm: some JWTAlgorithm) async throws {}
        }
        let (kid, key) = issuer.state.withLock { $0.keys[0] }
        let collection = JWTKeyCollection()
        await collection.add(ecdsa: key, kid: JWKIdentifier(string: kid))
        let cases: [(JSONValue, JSONValue?, String)] = [
            (2_000_000_000, 1e300, "nbf"), (-1e300, nil, "expired a great many"), (2_000_000_000, "2099-01-01", "nbf is not a number"),
            ("soon", nil, "no exp"), (1e300, 1e19, "nbf"),
        ]
        for (exp, nbf, expected) in cases {
            let token = try await collection.sign(Odd(exp: exp, nbf: nbf), kid: JWKIdentifier(string: kid))
            let refused = await refusal(verifier, "Bearer \(token)")
            #expect(refused?.status == 401 && refused?.message.contains(expected) == true, "\(exp) \(String(describing: nbf)): \(String(describing: refused))")
        }
        issuer.state.withLock { $0.introspection = ["active": true, "aud": .string(FakeIssuer.resource), "scope": "mcp:tools", "nbf": 1e300] }
        var settings = MCPAuthSettings(issuer: FakeIssuer.issuer, resource: FakeIssuer.resource)
        settings.introspectionURL = "https://auth.example.com/introspect"
        let introspecting = TokenVerifier(settings: settings, http: issuer, apiKey: nil, logger: Logger(label: "test"), wallClock: { Self.now })
        #expect(await refusal(introspecting, "Bearer opaque")?.message.contains("nbf") == true)
        issuer.state.withLock { $0.introspection = ["active": true, "aud": .string(FakeIssuer.resource), "exp": "1"] }
        #expect(await refusal(introspecting, "Bearer opaque2")?.message.contains("exp is not a number") == true)
    }

    @Test("Two Authorization headers are one bad request; opaque tokens without introspection credentials are 401, not calls")
    func oddRequests() async throws {
        let issuer = FakeIssuer()
        let verifier = verifier(issuer)
        #expect(await refusal(verifier, "Bearer a.b.c, Bearer d.e.f")?.status == 400)
        // The issuer advertises introspection, but this server has no credentials for it.
        #expect(await refusal(verifier, "Bearer junk")?.status == 401)
        #expect(issuer.state.withLock { $0.introspections } == 0)
    }

    @Test("Scopes: MCP_AUTH_SCOPES for every request, a tool's own for its calls, both named in the refusal")
    func scopes() async throws {
        let issuer = FakeIssuer()
        let verifier = verifier(issuer) { $0.toolScopes = ["echo": ["echo:run"]] }
        var claims = TestClaims()
        claims.scope = "profile"
        let missing = await refusal(verifier, "Bearer \(try await issuer.token(claims))")
        #expect(missing?.status == 403 && missing?.scopes == ["mcp:tools"])
        let grant = try await verifier.authenticate(authorization: "Bearer \(try await issuer.token(TestClaims()))", tokenInQuery: false)
        #expect(throws: Never.self) { try verifier.authorize(grant, tool: "store", declared: ["memory:write"]) }
        do {
            try verifier.authorize(grant, tool: "echo", declared: [])
            Issue.record("a call without echo:run was let through")
        } catch {
            #expect(error.status == 403 && error.scopes == ["mcp:tools", "echo:run"] && error.message.contains("echo:run"))
        }
    }

    @Test("No token, a token in the query, another scheme, the API key")
    func shapes() async throws {
        let issuer = FakeIssuer()
        let verifier = verifier(issuer, apiKey: "sekret")
        let none = await refusal(verifier, nil)
        #expect(none?.status == 401 && none?.scopes == ["mcp:tools"])
        do {
            _ = try await verifier.authenticate(authorization: nil, tokenInQuery: true)
            Issue.record("a token in the query was accepted")
        } catch {
            #expect(error.status == 400)
        }
        #expect(await refusal(verifier, "Basic YTpi")?.status == 401)
        #expect(try await verifier.authenticate(authorization: "Bearer sekret", tokenInQuery: false).isAPIKey)
        #expect(try await verifier.authenticate(authorization: "sekret", tokenInQuery: false).isAPIKey)
        #expect(await refusal(verifier, "Bearer sekret2")?.status == 401)
        #expect(issuer.jwksFetches == 0)
    }

    @Test("Forgeries: alg none, HS256 keyed with the public key, a jku, another key's signature, a huge token")
    func forgeries() async throws {
        let issuer = FakeIssuer()
        let verifier = verifier(issuer)
        let payload = b64url(try JSONValue.object(["iss": .string(FakeIssuer.issuer), "aud": .string(FakeIssuer.resource), "exp": 2_000_000_000, "scope": "mcp:tools"]).serialized())
        let none = b64url(Array(#"{"alg":"none","kid":"k1"}"#.utf8)) + "." + payload + "."
        #expect(await refusal(verifier, "Bearer \(none)")?.message.contains("none") == true)
        let hsHeader = b64url(Array(#"{"alg":"HS256","kid":"k1"}"#.utf8))
        let publicPEM = issuer.state.withLock { $0.keys[0].key.publicKey.pemRepresentation }
        let mac = HMAC<SHA256>.authenticationCode(for: Array((hsHeader + "." + payload).utf8), using: SymmetricKey(data: Array(publicPEM.utf8)))
        let hs = hsHeader + "." + payload + "." + b64url(Array(mac))
        #expect(await refusal(verifier, "Bearer \(hs)")?.message.contains("HS256") == true)
        let jku = try await issuer.token(TestClaims(), header: ["jku": .string("https://evil.example/jwks")])
        #expect(await refusal(verifier, "Bearer \(jku)")?.message.contains("jku") == true)
        // Signed by a key the issuer never published, under a kid it did.
        let forger = JWTKeyCollection()
        await forger.add(ecdsa: ES256PrivateKey(), kid: "k1")
        let forged = try await forger.sign(TestClaims(), kid: "k1")
        #expect(await refusal(verifier, "Bearer \(forged)")?.message.contains("signature") == true)
        let huge = String(repeating: "a", count: 9000)
        #expect(await refusal(verifier, "Bearer \(huge)")?.message.contains("9000 bytes") == true)
        #expect(await refusal(verifier, "Bearer not.a.jwt")?.status == 401)
    }

    @Test("Rotation: an unknown kid refetches the keys once per interval; a flood of made-up kids costs one fetch")
    func rotation() async throws {
        let issuer = FakeIssuer()
        // Long enough that a loaded CI machine finishes the flood inside one interval.
        let verifier = verifier(issuer) { $0.refetchInterval = .milliseconds(1500) }
        // Signed by a key the issuer publishes only after its next fetch; the flood's tokens are
        // made before the clock starts.
        let unpublished = ES256PrivateKey()
        let collection = JWTKeyCollection()
        await collection.add(ecdsa: unpublished, kid: "k2")
        let early = try await collection.sign(TestClaims(), kid: "k2")
        var flood: [String] = []
        for index in 0..<50 {
            let forged = JWTKeyCollection()
            await forged.add(ecdsa: unpublished, kid: JWKIdentifier(string: "random-\(index)"))
            flood.append(try await forged.sign(TestClaims(), kid: JWKIdentifier(string: "random-\(index)")))
        }
        let good = try await issuer.token(TestClaims())
        #expect(await refusal(verifier, "Bearer \(good)") == nil)
        #expect(issuer.jwksFetches == 1)
        for token in flood { #expect(await refusal(verifier, "Bearer \(token)")?.status == 401) }
        #expect(await refusal(verifier, "Bearer \(early)")?.message.contains("'k2' is not among") == true)
        #expect(issuer.jwksFetches == 1)
        issuer.state.withLock { $0.keys.append(("k2", unpublished)) }
        try await Task.sleep(for: .milliseconds(1600))
        #expect(await refusal(verifier, "Bearer \(early)") == nil)
        #expect(issuer.jwksFetches == 2)
    }

    @Test("An issuer that is down or answers garbage: 503 saying why, no fetch storm, old keys kept")
    func issuerDown() async throws {
        let issuer = FakeIssuer()
        issuer.set(.down)
        let verifier = verifier(issuer)
        let token = try await issuer.token(TestClaims())
        let down = await refusal(verifier, "Bearer \(token)")
        #expect(down?.status == 503 && down?.message.contains("could not be reached") == true)
        // Refused at once for a moment, without another fetch.
        for _ in 0..<20 { #expect(await refusal(verifier, "Bearer \(token)")?.status == 503) }
        #expect(issuer.jwksFetches == 1)
        issuer.set(.garbage)
        try await Task.sleep(for: .milliseconds(2100))
        #expect(await refusal(verifier, "Bearer \(token)")?.message.contains("not a JSON object") == true)
        issuer.set(.ok)
        try await Task.sleep(for: .milliseconds(2100))
        #expect(await refusal(verifier, "Bearer \(token)") == nil)
    }

    @Test("Opaque tokens go to introspection: active and for this resource, or refused")
    func introspection() async throws {
        let issuer = FakeIssuer()
        let verifier = verifier(issuer) { settings in
            settings.clientID = "mcp-server"
            settings.clientSecret = "s3cret"
        }
        issuer.state.withLock { $0.introspection = ["active": true, "aud": .string(FakeIssuer.resource), "scope": "mcp:tools", "exp": 2_000_000_000] }
        let grant = try await verifier.authenticate(authorization: "Bearer opaque-1", tokenInQuery: false)
        #expect(grant.scopes == ["mcp:tools"] && grant.validUntil == Self.now + 60)
        issuer.state.withLock { $0.introspection = ["active": true, "aud": "https://other.example/mcp", "scope": "mcp:tools"] }
        #expect(await refusal(verifier, "Bearer opaque-2")?.message.contains("not issued for this server") == true)
        issuer.state.withLock { $0.introspection = ["active": false] }
        #expect(await refusal(verifier, "Bearer opaque-3")?.message.contains("not active") == true)
        #expect(issuer.state.withLock { $0.introspections } == 3)
    }
}

@Suite("MCP token verification: keys", .defaultPass)
struct TokenVerifierKeyTests {
    @Test("A token naming no kid is verified by the issuer's only key, and refused when there are several")
    func noKid() async throws {
        let single = FakeIssuer(kids: ["only"])
        var settings = MCPAuthSettings(issuer: FakeIssuer.issuer, resource: FakeIssuer.resource)
        settings.requiredScopes = []
        let verifier = TokenVerifier(settings: settings, http: single, apiKey: nil, logger: Logger(label: "test"), wallClock: { 1_900_000_000 })
        let key = single.state.withLock { $0.keys[0].key }
        let collection = JWTKeyCollection()
        await collection.add(ecdsa: key)
        let token = try await collection.sign(TestClaims())
        #expect(!token.contains("kid"))
        #expect(try await verifier.authenticate(authorization: "Bearer \(token)", tokenInQuery: false).subject == "alice")
        let several = FakeIssuer(kids: ["a", "b"])
        let other = TokenVerifier(settings: settings, http: several, apiKey: nil, logger: Logger(label: "test"), wallClock: { 1_900_000_000 })
        let first = JWTKeyCollection()
        await first.add(ecdsa: several.state.withLock { $0.keys[0].key })
        do {
            _ = try await other.authenticate(authorization: "Bearer \(try await first.sign(TestClaims()))", tokenInQuery: false)
            Issue.record("a token naming no key was accepted among several keys")
        } catch let error as AuthRefusal {
            #expect(error.message.contains("names no signing key"))
        }
    }
}

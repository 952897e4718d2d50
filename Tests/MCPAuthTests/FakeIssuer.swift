import Crypto
import ExtrasBase64
import JWTKit
import MCPAuth
import Synchronization
import WorkerJSON

/// An authorization server in process: its metadata and JWKS, served through `IssuerHTTP`, keys
/// made and rotated by the test, every call counted, and failures on demand.
final class FakeIssuer: IssuerHTTP {
    enum Mode: Sendable { case ok, down, garbage, status(Int) }

    struct State {
        var keys: [(kid: String, key: ES256PrivateKey)] = []
        var mode = Mode.ok
        var jwksFetches = 0
        var metadataFetches = 0
        var introspection: JSONValue = ["active": false]
        var introspections = 0
    }

    static let issuer = "https://auth.example.com/realms/tools"
    static let resource = "https://mem.example.com/mcp"
    let state = Mutex(State())

    init(kids: [String] = ["k1"]) {
        state.withLock { state in state.keys = kids.map { ($0, ES256PrivateKey()) } }
    }

    var jwksFetches: Int { state.withLock { $0.jwksFetches } }

    func rotate(to kid: String) {
        state.withLock { state in state.keys.append((kid, ES256PrivateKey())) }
    }

    func set(_ mode: Mode) { state.withLock { $0.mode = mode } }

    func get(_ url: String, timeout: Duration, maxBytes: Int) async throws -> (status: Int, body: [UInt8]) {
        let (mode, keys) = state.withLock { state in
            if url.hasSuffix("/jwks") { state.jwksFetches += 1 } else { state.metadataFetches += 1 }
            return (state.mode, state.keys)
        }
        if url == "https://auth.example.com/.well-known/oauth-authorization-server/realms/tools" {
            let metadata: JSONValue = [
                "issuer": .string(Self.issuer), "jwks_uri": "https://auth.example.com/jwks",
                "introspection_endpoint": "https://auth.example.com/introspect",
            ]
            return (200, try metadata.serialized())
        }
        guard url == "https://auth.example.com/jwks" else { return (404, []) }
        switch mode {
        case .down: throw FakeDown()
        case .garbage: return (200, Array("<html>oops".utf8))
        case .status(let code): return (code, [])
        case .ok: break
        }
        let jwks: [JSONValue] = keys.map { kid, key in
            let parameters = key.publicKey.parameters!
            return ["kty": "EC", "crv": "P-256", "x": .string(parameters.x), "y": .string(parameters.y), "kid": .string(kid), "alg": "ES256", "use": "sig"]
        }
        return (200, try JSONValue.object(["keys": .array(jwks)]).serialized())
    }

    func postForm(
        _ url: String, fields: [(String, String)], basic: (user: String, password: String)?, timeout: Duration, maxBytes: Int
    ) async throws -> (status: Int, body: [UInt8]) {
        let answer = state.withLock { state in
            state.introspections += 1
            return state.introspection
        }
        return (200, try answer.serialized())
    }

    /// A token signed by the key `kid` (the newest by default) with these claims.
    func token(_ claims: TestClaims, kid: String? = nil, header: JWTHeader = JWTHeader()) async throws -> String {
        let (id, key) = state.withLock { state in kid.flatMap { k in state.keys.first { $0.kid == k } } ?? state.keys.last! }
        let collection = JWTKeyCollection()
        await collection.add(ecdsa: key, kid: JWKIdentifier(string: id))
        return try await collection.sign(claims, kid: JWKIdentifier(string: id), header: header)
    }
}

struct FakeDown: Error, CustomStringConvertible {
    var description: String { "connection refused" }
}

struct TestClaims: JWTPayload {
    var iss: String? = FakeIssuer.issuer
    var aud: [String]? = [FakeIssuer.resource]
    var exp: Double? = 2_000_000_000
    var nbf: Double?
    var scope: String? = "mcp:tools memory:write"
    var sub: String? = "alice"

    func verify(using algorithm: some JWTAlgorithm) async throws {}
}

/// base64url without padding, for tokens made by hand.
func b64url(_ bytes: [UInt8]) -> String {
    Base64.encodeToString(bytes: bytes, options: [.base64UrlAlphabet, .omitPaddingCharacter])
}

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import ExtrasBase64
import JWTKit
import Logging
import Synchronization
import WorkerJSON
import WorkerRuntime

/// Decides whether a request's bearer token lets it in (docs/mcp.md, "Authorization"): the
/// server's API key, a JWT access token signed by the issuer's keys (jwt-kit does the
/// cryptography), or an opaque token the issuer's introspection endpoint vouches for.
package final class TokenVerifier: Sendable {
    package let settings: MCPAuthSettings
    private let keys: IssuerKeyCache
    private let introspector: TokenIntrospector
    private let cache = VerifiedTokenCache()
    private let apiKey: [UInt8]?
    private let logger: Logger
    /// Seconds since 1970 (tests move it).
    private let wallClock: @Sendable () -> Double

    package init(
        settings: MCPAuthSettings, http: any IssuerHTTP, apiKey: String?, logger: Logger,
        wallClock: @escaping @Sendable () -> Double = { Date().timeIntervalSince1970 }
    ) {
        self.settings = settings
        self.keys = IssuerKeyCache(settings: settings, http: http, logger: logger)
        self.introspector = TokenIntrospector(settings: settings, http: http)
        self.apiKey = apiKey.map { Array($0.utf8) }
        self.logger = logger
        self.wallClock = wallClock
    }

    /// Fetches the issuer's metadata and keys now, so problems show in the log at start-up.
    package func warm() async { await keys.warm() }

    /// The issuer as its metadata spells it, once discovered.
    package var canonicalIssuer: String? { get async { await keys.canonicalIssuer } }

    /// The grant of a request with this `Authorization` header, checked against the scopes every
    /// request needs. `tokenInQuery`: the URL carries `access_token`, which is refused (tokens
    /// in URLs end up in logs and histories; MCP forbids them).
    package func authenticate(authorization: String?, tokenInQuery: Bool) async throws(AuthRefusal) -> VerifiedToken {
        if tokenInQuery {
            throw .invalidRequest("access tokens in the query string are refused: send them as Authorization: Bearer <token>")
        }
        guard let authorization, !authorization.isEmpty else { throw .missing(scopes: settings.requiredScopes) }
        // Two headers reach here joined by a comma, which no token contains. (Bytes, not
        // Characters: walking a 1 kB token as grapheme clusters was a tenth of a JWT request.)
        if authorization.utf8.contains(UInt8(ascii: ",")) { throw .invalidRequest("send one Authorization header with one bearer token") }
        let bytes: [UInt8]
        if let credential = bearerCredential(authorization) {
            bytes = credential
        } else if let apiKey, constantTimeEqual(Array(authorization.utf8), apiKey) {
            // The bare key, as RunPod's clients may send it.
            return VerifiedToken(scopes: [], validUntil: .infinity, isAPIKey: true)
        } else {
            throw .invalidToken("the Authorization header must be Bearer <access token>")
        }
        if let apiKey, constantTimeEqual(bytes, apiKey) { return VerifiedToken(scopes: [], validUntil: .infinity, isAPIKey: true) }
        let grant = try await verify(bytes)
        let missing = grant.missing(settings.requiredScopes)
        guard missing.isEmpty else {
            throw .insufficientScope(
                settings.requiredScopes, "the token lacks the scope(s) \(missing.joined(separator: " ")) that every request here needs (MCP_AUTH_SCOPES)")
        }
        return grant
    }

    /// Refuses a grant that lacks the scopes a call of `tool` needs (its declared ones, or
    /// `MCP_TOOL_SCOPES`'s), naming them all, so the client can ask for them (step-up).
    package func authorize(_ grant: VerifiedToken, tool: String, declared: [String]) throws(AuthRefusal) {
        let toolScopes = settings.scopes(forTool: tool, declared: declared)
        guard !toolScopes.isEmpty else { return }
        let missing = grant.missing(toolScopes)
        guard missing.isEmpty else {
            var needed = settings.requiredScopes
            for scope in toolScopes where !needed.contains(scope) { needed.append(scope) }
            throw .insufficientScope(needed, "the tool \(tool) needs the scope(s) \(missing.joined(separator: " ")), which the token lacks")
        }
    }

    /// A token's grant: from the cache, else checked (and cached until it expires).
    package func verify(_ token: [UInt8]) async throws(AuthRefusal) -> VerifiedToken {
        guard token.count <= settings.maxTokenBytes else {
            throw .invalidToken("the token is \(token.count) bytes; tokens over \(settings.maxTokenBytes) bytes are refused unread")
        }
        guard !token.isEmpty else { throw .invalidToken("the bearer token is empty") }
        let now = wallClock()
        let key = VerifiedTokenCache.key(token)
        if let known = cache.get(key, now: now) { return known }
        let grant: VerifiedToken
        if token.lazy.filter({ $0 == UInt8(ascii: ".") }).count == 2 {
            grant = try await verifyJWT(token, now: now)
        } else {
            guard let endpoint = try await keys.introspectionEndpoint() else {
                throw .invalidToken("the token is not a JWT, and the issuer offers no introspection endpoint to check it (MCP_AUTH_INTROSPECTION_URL)")
            }
            grant = try await introspector.introspect(token, endpoint: endpoint, issuer: await keys.canonicalIssuer, now: now)
        }
        cache.put(key, grant, now: now)
        return grant
    }

    private func verifyJWT(_ token: [UInt8], now: Double) async throws(AuthRefusal) -> VerifiedToken {
        let header = try Self.header(token)
        guard let algorithm = header["alg"]?.stringValue else { throw .invalidToken("the token's header has no alg") }
        guard IssuerKeys.algorithms.contains(algorithm) else {
            throw .invalidToken(
                "the token is signed with \(algorithm), which is not accepted here (accepted: \(IssuerKeys.algorithms.sorted().joined(separator: ", ")))")
        }
        // Keys come from the issuer's JWKS only: never from the token, nor from a URL it names.
        for field in ["jku", "x5u", "jwk", "x5c"] where header[field] != nil {
            throw .invalidToken("the token's header carries \(field): keys are taken from the issuer's published JWKS only")
        }
        if header["crit"] != nil { throw .invalidToken("the token's header lists critical extensions (crit), which this server does not implement") }
        // A token naming no key (or "") is checked only against an issuer with a single key.
        let kid = header["kid"]?.stringValue ?? ""
        let keySet = try await keys.keys(for: kid)
        guard let (_, key) = keySet.key(for: kid), IssuerKeys.fits(algorithm, key) else {
            throw .invalidToken("the token's alg \(algorithm) does not fit its key '\(kid)' (\(keySet.keys[kid].map { $0.algorithm ?? $0.type } ?? "unknown"))")
        }
        let claims: AccessTokenClaims
        do {
            // A token naming no key gets jwt-kit's default key: here the only one (`knows`).
            claims = try await keySet.collection.verify(token, as: AccessTokenClaims.self)
        } catch let error as JWTError where error.errorType == .signatureVerificationFailed {
            throw .invalidToken("the token's signature does not verify with the issuer's key '\(kid)'")
        } catch {
            // jwt-kit's and the crypto library's own words mean little to a client: the kind of
            // fault is enough, the details go to the log.
            logger.debug("MCP authorization: a token failed verification: \(error)")
            throw .invalidToken("the token is malformed (its signature or claims cannot be decoded)")
        }
        let canonical = await keys.canonicalIssuer
        guard let issuer = claims.issuer else { throw .invalidToken("the token has no iss") }
        guard IssuerMetadata.sameURL(issuer, settings.issuer) || canonical.map({ IssuerMetadata.sameURL(issuer, $0) }) == true else {
            throw .invalidToken("the token was issued by \(issuer), not by MCP_AUTH_ISSUER (\(settings.issuer))")
        }
        guard claims.audiences.contains(where: { IssuerMetadata.sameURL($0, settings.resource) }) else {
            let named = claims.audiences.isEmpty ? "no audience" : "the audience \(claims.audiences.joined(separator: ", "))"
            throw .invalidToken("the token names \(named), not this server (\(settings.resource)): ask for it with resource=\(settings.resource)")
        }
        return try Self.grant(expires: claims.expires, notBefore: claims.notBefore, scopes: claims.scopes, subject: claims.subject, now: now, leeway: settings.leeway)
    }

    /// The grant of a token whose issuer and audience are right, if its times allow it now.
    static func grant(
        expires: Double?, notBefore: Double?, scopes: [String], subject: String?, now: Double, leeway: Duration
    ) throws(AuthRefusal) -> VerifiedToken {
        let skew = Double(leeway.components.seconds)
        guard let expires, expires.isFinite else { throw .invalidToken("the token has no exp (a number of seconds): access tokens must expire") }
        guard now < expires + skew else { throw .invalidToken("the token expired \(seconds(now - expires)) s ago") }
        if let notBefore {
            guard notBefore.isFinite else { throw .invalidToken("the token's nbf is not a number of seconds") }
            if now + skew < notBefore { throw .invalidToken("the token is not valid for another \(seconds(notBefore - now)) s (nbf)") }
        }
        return VerifiedToken(scopes: Set(scopes), validUntil: expires + skew, subject: subject)
    }

    /// Whole seconds for a message; any Double (a hostile token's 1e300 included) prints.
    static func seconds(_ value: Double) -> String {
        value.isFinite && abs(value) < 1e15 ? String(Int64(value)) : "a great many"
    }

    /// The JOSE header, read before any key is chosen.
    static func header(_ token: [UInt8]) throws(AuthRefusal) -> [String: JSONValue] {
        let end = token.firstIndex(of: UInt8(ascii: ".")) ?? 0
        guard end > 0, let bytes = try? Base64.decode(bytes: token[..<end], options: [.base64UrlAlphabet, .omitPaddingCharacter]),
            case .object(let fields)? = try? JSONValue.parse(bytes)
        else { throw .invalidToken("the token's header is not base64url-encoded JSON: it is not a JWT") }
        return fields
    }
}

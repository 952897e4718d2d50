import Synchronization
import WorkerJSON

/// Opaque access tokens, checked by the issuer's introspection endpoint (RFC 7662). Bounded:
/// at most `maxInFlight` checks at once, so a flood of made-up tokens cannot hold every request
/// on the issuer.
final class TokenIntrospector: Sendable {
    let settings: MCPAuthSettings
    let http: any IssuerHTTP
    private let inFlight = Atomic<Int>(0)
    static let maxInFlight = 32
    /// An introspected token is trusted this long at most: introspection exists to see revocations.
    static let maxCache = 60.0

    init(settings: MCPAuthSettings, http: any IssuerHTTP) {
        self.settings = settings
        self.http = http
    }

    func introspect(_ token: [UInt8], endpoint: String, issuer canonical: String?, now: Double) async throws(AuthRefusal) -> VerifiedToken {
        guard inFlight.add(1, ordering: .relaxed).newValue <= Self.maxInFlight else {
            inFlight.subtract(1, ordering: .relaxed)
            throw .unavailable("too many token introspections are in flight; retry shortly")
        }
        defer { inFlight.subtract(1, ordering: .relaxed) }
        let basic = settings.clientID.flatMap { id in settings.clientSecret.map { (user: id, password: $0) } }
        let status: Int
        let body: [UInt8]
        do {
            (status, body) = try await http.postForm(
                endpoint, fields: [("token", String(decoding: token, as: UTF8.self)), ("token_type_hint", "access_token")], basic: basic,
                timeout: settings.issuerTimeout, maxBytes: 64 << 10)
        } catch {
            throw .unavailable("the introspection endpoint \(endpoint) could not be reached: \(error)")
        }
        guard status == 200 else {
            throw .unavailable(
                "the introspection endpoint \(endpoint) answered HTTP \(status)\(status == 401 ? ": check MCP_AUTH_CLIENT_ID and MCP_AUTH_CLIENT_SECRET" : "")")
        }
        return try Self.read(body, settings: settings, issuer: canonical, now: now)
    }

    /// The grant an introspection answer gives.
    static func read(_ body: [UInt8], settings: MCPAuthSettings, issuer canonical: String?, now: Double) throws(AuthRefusal) -> VerifiedToken {
        guard let json = try? JSONValue.parse(body), case .object(let fields) = json else {
            throw .unavailable("the introspection endpoint's answer is not a JSON object")
        }
        guard fields["active"] == .bool(true) else { throw .invalidToken("the token is not active (revoked, expired or unknown to the issuer)") }
        if let claim = fields["iss"] {
            guard let issuer = claim.stringValue else { throw .invalidToken("the introspected token's iss is not a string") }
            guard IssuerMetadata.sameURL(issuer, settings.issuer) || canonical.map({ IssuerMetadata.sameURL(issuer, $0) }) == true else {
                throw .invalidToken("the token was issued by \(issuer), not by MCP_AUTH_ISSUER (\(settings.issuer))")
            }
        }
        // Times that are present must be numbers: a string `exp` is no expiry to trust.
        for name in ["exp", "nbf"] where fields[name] != nil && fields[name]?.doubleValue == nil {
            throw .invalidToken("the introspected token's \(name) is not a number of seconds")
        }
        let audiences: [String]
        switch fields["aud"] {
        case .string(let one)?: audiences = [one]
        case .array(let many)?: audiences = many.compactMap(\.stringValue)
        default: audiences = []
        }
        guard audiences.contains(where: { IssuerMetadata.sameURL($0, settings.resource) }) else {
            throw .invalidToken("the introspected token is not issued for this server (\(settings.resource)); its audience: \(audiences.isEmpty ? "none" : audiences.joined(separator: ", "))")
        }
        let scopes = fields["scope"]?.stringValue.map { $0.split(separator: " ").map(String.init) } ?? []
        let expires = fields["exp"]?.doubleValue
        var grant = try TokenVerifier.grant(
            expires: expires ?? now + maxCache, notBefore: fields["nbf"]?.doubleValue, scopes: scopes, subject: fields["sub"]?.stringValue, now: now,
            leeway: .zero)
        grant.validUntil = min(grant.validUntil, now + maxCache)
        return grant
    }
}

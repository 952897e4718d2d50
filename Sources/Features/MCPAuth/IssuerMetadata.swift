#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import WorkerJSON

/// What this server needs from the authorization server's metadata (RFC 8414, or OpenID
/// Connect discovery): where its keys are, and its introspection endpoint if it has one.
package struct IssuerMetadata: Sendable, Equatable {
    package var issuer: String
    package var jwksURI: String
    package var introspectionEndpoint: String?

    /// Where the metadata may be, in the order MCP's authorization spec tries them: RFC 8414's
    /// path insertion, OpenID's path insertion, OpenID's path appending (the last two only for an
    /// issuer with a path; without one, the two root documents).
    package static func discoveryURLs(issuer: String) -> [String] {
        guard let (origin, path) = URLParts.split(issuer) else { return [] }
        if path.isEmpty {
            return ["\(origin)/.well-known/oauth-authorization-server", "\(origin)/.well-known/openid-configuration"]
        }
        return [
            "\(origin)/.well-known/oauth-authorization-server\(path)", "\(origin)/.well-known/openid-configuration\(path)",
            "\(origin)\(path)/.well-known/openid-configuration",
        ]
    }

    /// Reads a metadata document; the error says which field is wrong. The document must name
    /// the configured issuer (RFC 8414 §3.3: else anyone able to answer at that URL could
    /// substitute their keys).
    package static func parse(_ body: [UInt8], expectedIssuer: String, from url: String) throws(AuthRefusal) -> IssuerMetadata {
        guard let json = try? JSONValue.parse(body), case .object(let fields) = json else {
            throw .unavailable("the authorization server's metadata at \(url) is not a JSON object")
        }
        guard let issuer = fields["issuer"]?.stringValue, sameURL(issuer, expectedIssuer) else {
            throw .unavailable(
                "the metadata at \(url) names the issuer \(fields["issuer"]?.stringValue ?? "(none)"), not MCP_AUTH_ISSUER (\(expectedIssuer))")
        }
        guard let jwks = fields["jwks_uri"]?.stringValue, isSafeURL(jwks) else {
            throw .unavailable("the metadata at \(url) has no usable jwks_uri (an https URL, or http on loopback): the issuer's signing keys cannot be found")
        }
        let introspection = fields["introspection_endpoint"]?.stringValue.flatMap { isSafeURL($0) ? $0 : nil }
        return IssuerMetadata(issuer: issuer, jwksURI: jwks, introspectionEndpoint: introspection)
    }

    /// Two spellings of one issuer: equal, or equal but for one trailing slash (Auth0's issuers
    /// end in one; people often type them without).
    package static func sameURL(_ a: String, _ b: String) -> Bool {
        a == b || (a.hasSuffix("/") ? String(a.dropLast()) : a) == (b.hasSuffix("/") ? String(b.dropLast()) : b)
    }

    /// https, or http on a loopback host.
    static func isSafeURL(_ text: String) -> Bool {
        guard let url = URL(string: text), let scheme = url.scheme?.lowercased(), let host = url.host, !host.isEmpty else { return false }
        return scheme == "https" || (scheme == "http" && MCPAuthSettings.isLoopback(host))
    }
}

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import WorkerJSON

/// This server as an OAuth protected resource (RFC 9728): the metadata document clients read to
/// find the authorization server, and where it is published.
package struct ProtectedResource: Sendable {
    package let settings: MCPAuthSettings
    /// Every scope a client may need here: the required ones and every tool's.
    package let scopesSupported: [String]
    package let name: String

    package init(settings: MCPAuthSettings, toolScopes: [String], name: String) {
        self.settings = settings
        var seen = Set<String>()
        self.scopesSupported = (settings.requiredScopes + toolScopes).filter { seen.insert($0).inserted }
        self.name = name
    }

    /// The path every metadata document lives under (RFC 9728 §3).
    package static let wellKnownPath = "/.well-known/oauth-protected-resource"

    /// Where clients are sent by a challenge: the resource's origin, the well-known path, then the
    /// resource's own path (RFC 9728 §3.1: `https://h/.well-known/oauth-protected-resource/mcp`).
    package var metadataURL: String {
        guard let (origin, path) = URLParts.split(settings.resource) else { return settings.resource + Self.wellKnownPath }
        return origin + Self.wellKnownPath + path
    }

    /// The metadata document (RFC 9728 §2); `issuer` as the authorization server's metadata
    /// spells it, when known (else `MCP_AUTH_ISSUER` as set).
    package func document(issuer: String? = nil) -> JSONValue {
        [
            "resource": .string(settings.resource),
            "authorization_servers": [.string(issuer ?? settings.issuer)],
            "scopes_supported": .array(scopesSupported.map { .string($0) }),
            "bearer_methods_supported": ["header"],
            "resource_name": .string(name),
        ]
    }
}

/// A URL's origin (`scheme://host[:port]`, an IPv6 host in brackets) and its path without
/// trailing slashes: the two halves the well-known URLs of RFC 8414 and RFC 9728 go between.
enum URLParts {
    static func split(_ text: String) -> (origin: String, path: String)? {
        guard let url = URL(string: text), let scheme = url.scheme, let host = url.host else { return nil }
        let shownHost = host.contains(":") && !host.hasPrefix("[") ? "[\(host)]" : host
        var path = url.path
        while path.hasSuffix("/") { path.removeLast() }
        return ("\(scheme)://\(shownHost)\(url.port.map { ":\($0)" } ?? "")", path)
    }
}

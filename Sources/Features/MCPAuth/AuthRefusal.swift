/// Why a request to a protected route was not let through, and how to answer it (RFC 6750 §3,
/// RFC 9728 §5.1): the status, the `WWW-Authenticate` challenge, a message for people.
package struct AuthRefusal: Error, Sendable, Equatable, CustomStringConvertible {
    private enum Code: Sendable, Equatable {
        case missing
        case invalidRequest
        case invalidToken
        case insufficientScope
        case unavailable
    }

    private let code: Code
    /// What went wrong, in words a client's developer can act on.
    package let message: String
    /// The scopes that would have let the request through (a missing token, too few scopes).
    package let scopes: [String]

    private init(_ code: Code, _ message: String, scopes: [String] = []) {
        self.code = code
        self.message = message
        self.scopes = scopes
    }

    /// No token at all: the client is told where to get one.
    package static func missing(scopes: [String]) -> Self {
        Self(.missing, "this MCP server needs an OAuth access token: send Authorization: Bearer <token> (see the resource metadata)", scopes: scopes)
    }

    /// The request carries a token the wrong way (in the query string, twice).
    package static func invalidRequest(_ message: String) -> Self { Self(.invalidRequest, message) }

    /// The token is not one this server accepts (signature, issuer, audience, times, key).
    package static func invalidToken(_ message: String) -> Self { Self(.invalidToken, message) }

    /// A good token without a scope this request needs: the client may ask for it (step-up).
    package static func insufficientScope(_ scopes: [String], _ message: String) -> Self { Self(.insufficientScope, message, scopes: scopes) }

    /// The token could not be checked now (the issuer's keys or introspection unreachable).
    package static func unavailable(_ message: String) -> Self { Self(.unavailable, message) }

    package var status: Int {
        switch code {
        case .missing, .invalidToken: 401
        case .invalidRequest: 400
        case .insufficientScope: 403
        case .unavailable: 503
        }
    }

    /// Seconds a client should wait before trying again (503 only): a failed fetch of the
    /// issuer's keys is tried again after 2 s (`KeyRefreshPolicy.retryAfterFailure`).
    package var retryAfter: Int? { code == .unavailable ? 2 : nil }

    /// The `WWW-Authenticate` value, naming the resource metadata so a client can discover the
    /// authorization server from any refusal.
    package func challenge(metadataURL: String) -> String? {
        var parts = ["resource_metadata=\"\(Self.quoted(metadataURL))\""]
        switch code {
        case .missing: break
        case .invalidRequest: parts.append("error=\"invalid_request\"")
        case .invalidToken: parts.append("error=\"invalid_token\"")
        case .insufficientScope: parts.append("error=\"insufficient_scope\"")
        case .unavailable: return nil
        }
        if !scopes.isEmpty { parts.append("scope=\"\(Self.quoted(scopes.joined(separator: " ")))\"") }
        if code != .missing { parts.append("error_description=\"\(Self.quoted(message))\"") }
        return "Bearer " + parts.joined(separator: ", ")
    }

    /// RFC 6750's quoted strings allow no `"` or `\`, and only printable ASCII.
    static func quoted(_ text: String) -> String {
        String(String.UnicodeScalarView(text.unicodeScalars.lazy.map { scalar in
            (0x20...0x7E).contains(scalar.value) && scalar != "\"" && scalar != "\\" ? scalar : "'"
        }))
    }

    package var description: String { message }
}

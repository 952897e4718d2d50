import JWTKit

/// The claims of a JWT access token this server reads (RFC 9068 names them). jwt-kit decodes
/// them once the signature has verified; the checks are `TokenVerifier`'s, on its own clock.
struct AccessTokenClaims: JWTPayload {
    var issuer: String?
    var audiences: [String] = []
    var expires: Double?
    var notBefore: Double?
    var subject: String?
    var clientID: String?
    var scopes: [String] = []

    private enum CodingKeys: String, CodingKey {
        case iss, aud, exp, nbf, sub, scope, scp
        case clientID = "client_id"
    }

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        issuer = try? container.decodeIfPresent(String.self, forKey: .iss)
        audiences = Self.strings(container, .aud, separator: nil)
        expires = try? container.decodeIfPresent(Double.self, forKey: .exp)
        // Present but not a number: refused as a time that never comes, not ignored.
        notBefore = container.contains(.nbf) ? ((try? container.decode(Double.self, forKey: .nbf)) ?? .nan) : nil
        subject = try? container.decodeIfPresent(String.self, forKey: .sub)
        clientID = try? container.decodeIfPresent(String.self, forKey: .clientID)
        // `scope` is RFC 9068's (one space-separated string); `scp` is Entra ID's and Okta's.
        scopes = Self.strings(container, .scope, separator: " ") + Self.strings(container, .scp, separator: " ")
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encodeIfPresent(issuer, forKey: .iss)
        try container.encode(audiences, forKey: .aud)
        try container.encodeIfPresent(expires, forKey: .exp)
    }

    /// A claim that is one string (split at `separator`) or an array of strings.
    private static func strings(_ container: KeyedDecodingContainer<CodingKeys>, _ key: CodingKeys, separator: Character?) -> [String] {
        if let one = try? container.decodeIfPresent(String.self, forKey: key) {
            guard let separator else { return [one] }
            return one.split(separator: separator).map(String.init)
        }
        return (try? container.decodeIfPresent([String].self, forKey: key)) ?? []
    }

    func verify(using algorithm: some JWTAlgorithm) async throws {}
}

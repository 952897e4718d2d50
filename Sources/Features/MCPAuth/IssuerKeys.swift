#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import JWTKit
import WorkerJSON

/// One fetch of the issuer's signing keys (its JWKS), ready to verify with: jwt-kit's key
/// collection, plus what each key may sign with, so a token's `alg` is checked against its key
/// before any cryptography runs.
package struct IssuerKeys: Sendable {
    package struct Key: Sendable, Equatable {
        /// `kty`: RSA, EC or OKP.
        package let type: String
        /// The key's own `alg`, when the JWKS names one.
        package let algorithm: String?
    }

    package let collection: JWTKeyCollection
    package let keys: [String: Key]
    /// Keys skipped, and why (an encryption key, a symmetric one, one jwt-kit cannot use).
    package let skipped: [String]

    /// The algorithms accepted from any issuer. No `none`, and no HMAC: an HMAC key is a shared
    /// secret, and a public key used as one is the oldest JWT forgery.
    package static let algorithms: Set<String> = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA"]

    /// Reads a JWKS document; throws when it holds no key this server can verify with.
    package static func parse(_ body: [UInt8], from url: String) async throws(AuthRefusal) -> IssuerKeys {
        guard let json = try? JSONValue.parse(body), case .array(let entries)? = json["keys"] else {
            throw .unavailable("the issuer's JWKS at \(url) is not a JSON object with a \"keys\" array")
        }
        let collection = JWTKeyCollection()
        var keys: [String: Key] = [:]
        var skipped: [String] = []
        let decoder = JSONDecoder()
        for (index, entry) in entries.enumerated() {
            guard case .object(var fields) = entry else {
                skipped.append("keys[\(index)]: not an object")
                continue
            }
            let type = fields["kty"]?.stringValue ?? ""
            if let use = fields["use"]?.stringValue, use != "sig" {
                skipped.append("keys[\(index)]: for \(use), not signatures")
                continue
            }
            if case .array(let operations)? = fields["key_ops"], !operations.contains(.string("verify")) {
                skipped.append("keys[\(index)]: its key_ops do not include verify")
                continue
            }
            guard ["RSA", "EC", "OKP"].contains(type) else {
                skipped.append("keys[\(index)]: key type '\(type)' (only RSA, EC and OKP public keys verify tokens here)")
                continue
            }
            if fields["d"] != nil {
                skipped.append("keys[\(index)]: a private key published in a JWKS")
                continue
            }
            let algorithm = fields["alg"]?.stringValue
            if let algorithm, !algorithms.contains(algorithm) {
                skipped.append("keys[\(index)]: algorithm \(algorithm) is not accepted")
                continue
            }
            // A key without an id can only be the single key of its set (a token then names none).
            let kid = fields["kid"]?.stringValue ?? (entries.count == 1 ? "" : nil)
            guard let kid else {
                skipped.append("keys[\(index)]: no kid, in a set of \(entries.count) keys")
                continue
            }
            if keys[kid] != nil {
                skipped.append("keys[\(index)]: a second key with kid '\(kid)' (the first is kept)")
                continue
            }
            fields["kid"] = .string(kid)
            do {
                let jwk = try decoder.decode(JWK.self, from: Data(try JSONValue.object(fields).serialized()))
                try await collection.add(jwk: jwk)
                keys[kid] = Key(type: type, algorithm: algorithm)
            } catch {
                skipped.append("keys[\(index)] (kid \(kid)): \(error)")
            }
        }
        guard !keys.isEmpty else {
            let why = skipped.isEmpty ? "it is empty" : skipped.joined(separator: "; ")
            throw .unavailable("the issuer's JWKS at \(url) has no key that can verify tokens: \(why)")
        }
        return IssuerKeys(collection: collection, keys: keys, skipped: skipped)
    }

    /// Whether a token naming `kid` has its key here ("": a token naming none, which only a
    /// single published key can verify).
    func knows(_ kid: String) -> Bool { kid.isEmpty ? keys.count == 1 : keys[kid] != nil }

    /// The key a token naming `kid` is verified with: for no kid, the single key, which is also
    /// jwt-kit's default (the first added), so the key checked here is the key that verifies.
    func key(for kid: String) -> (kid: String, key: Key)? {
        if kid.isEmpty { return keys.count == 1 ? keys.first.map { ($0.key, $0.value) } : nil }
        return keys[kid].map { (kid, $0) }
    }

    /// Whether `algorithm` may be used with `key`: the key's own `alg` when it names one, else
    /// any accepted algorithm of the key's type.
    static func fits(_ algorithm: String, _ key: Key) -> Bool {
        guard algorithms.contains(algorithm) else { return false }
        if let own = key.algorithm { return own == algorithm }
        switch key.type {
        case "RSA": return algorithm.hasPrefix("RS") || algorithm.hasPrefix("PS")
        case "EC": return algorithm.hasPrefix("ES")
        case "OKP": return algorithm == "EdDSA"
        default: return false
        }
    }
}

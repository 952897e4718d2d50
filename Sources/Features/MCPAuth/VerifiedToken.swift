#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Crypto
import Synchronization

/// What a checked token allows: its scopes, until when, and whose it is (for logs).
package struct VerifiedToken: Sendable, Equatable {
    package var scopes: Set<String>
    /// Seconds since 1970 after which the token is no longer accepted (its `exp` plus the leeway).
    package var validUntil: Double
    package var subject: String?
    /// The server's API key: every scope.
    package var isAPIKey = false

    package init(scopes: Set<String>, validUntil: Double, subject: String? = nil, isAPIKey: Bool = false) {
        self.scopes = scopes
        self.validUntil = validUntil
        self.subject = subject
        self.isAPIKey = isAPIKey
    }

    /// The scopes of `needed` this token lacks.
    package func missing(_ needed: [String]) -> [String] {
        isAPIKey ? [] : needed.filter { !scopes.contains($0) }
    }
}

/// Tokens already verified, by the SHA-256 of the token (the token itself is not kept), until
/// they expire: a busy client pays for its signature check once.
package final class VerifiedTokenCache: Sendable {
    private let entries = Mutex<[SHA256Digest: VerifiedToken]>([:])
    private let capacity: Int

    package init(capacity: Int = 10_000) {
        self.capacity = capacity
    }

    package static func key(_ token: [UInt8]) -> SHA256Digest { SHA256.hash(data: token) }

    package func get(_ key: SHA256Digest, now: Double) -> VerifiedToken? {
        entries.withLock { entries in
            guard let token = entries[key] else { return nil }
            guard now < token.validUntil else {
                entries[key] = nil
                return nil
            }
            return token
        }
    }

    package func put(_ key: SHA256Digest, _ token: VerifiedToken, now: Double) {
        entries.withLock { entries in
            if entries.count >= capacity {
                entries = entries.filter { now < $0.value.validUntil }
                // Still full of live tokens (many clients, or one minting them): start over
                // rather than grow; each pays one more verification.
                if entries.count >= capacity { entries.removeAll(keepingCapacity: true) }
            }
            entries[key] = token
        }
    }

    package var count: Int { entries.withLock { $0.count } }
}

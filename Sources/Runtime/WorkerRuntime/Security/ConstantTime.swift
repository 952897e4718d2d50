/// Compares secrets (API keys) without an early exit, so the time taken does not reveal how much
/// matched. The lengths are compared as whole numbers: folding their difference into a byte would
/// let a key padded with 256 NULs compare equal. Shared by the endpoint server's key check and
/// MCP authorization's.
package func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
    var difference: UInt8 = 0
    for index in 0..<max(a.count, b.count) {
        let left = index < a.count ? a[index] : 0
        let right = index < b.count ? b[index] : 0
        difference |= left ^ right
    }
    return difference == 0 && a.count == b.count
}

/// The credential of an `Authorization` value in the Bearer scheme: the scheme in any case, then
/// one or more spaces (RFC 9110), read as bytes (a token is ASCII; walking ~1 kB as Characters
/// cost a request a tenth of a worker's CPU). Nil when the value is not `Bearer <credential>`.
/// Shared by the endpoint server's key check and MCP authorization's.
package func bearerCredential(_ authorization: String) -> [UInt8]? {
    let bytes = Array(authorization.utf8)
    guard bytes.count > 7,
        zip(bytes, "bearer ".utf8).allSatisfy({ byte, expected in
            (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") ? byte + 32 : byte) == expected
        })
    else { return nil }
    let start = bytes[7...].firstIndex { $0 != UInt8(ascii: " ") } ?? bytes.endIndex
    return Array(bytes[start...])
}

/// Whether `host` is a loopback address: `localhost`, `::1`, or an IPv4 address in 127.0.0.0/8
/// written as one. An address, not a prefix: `127.evil.example` is a name that resolves anywhere.
package func isLoopbackHost(_ host: String) -> Bool {
    if host == "localhost" || host == "::1" || host == "[::1]" { return true }
    let octets = host.split(separator: ".", omittingEmptySubsequences: false)
    guard octets.count == 4, octets[0] == "127" else { return false }
    return octets.allSatisfy { octet in
        !octet.isEmpty && octet.count <= 3 && octet.allSatisfy(\.isASCIIDigit) && Int(octet)! <= 255
    }
}

extension Character {
    fileprivate var isASCIIDigit: Bool { isASCII && isNumber }
}

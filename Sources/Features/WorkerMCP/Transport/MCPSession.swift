/// Session ids of the streamable HTTP transport. Nothing is stored: an id only tells the calls
/// of one client apart from another's, so that a cancel reaches its own client's calls alone.
enum MCPSession {
    /// 128 random bits in hex: unguessable, so no client can name another's session.
    static func newID() -> String {
        var generator = SystemRandomNumberGenerator()
        let high = generator.next() as UInt64
        let low = generator.next() as UInt64
        return hex(high) + hex(low)
    }

    /// The spec's rule: visible ASCII (0x21 to 0x7E); bounded, as every header here is.
    static func isValid(_ id: String) -> Bool {
        !id.isEmpty && id.utf8.count <= 128 && id.utf8.allSatisfy { (0x21...0x7E).contains($0) }
    }

    private static func hex(_ value: UInt64) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }
}

/// The gateways a request has passed, in the `X-Gateway-Chain` header each one adds itself to
/// before calling an upstream: a gateway that finds itself there (an upstream's URL pointing back
/// at it, directly or through other gateways) refuses the job at once, instead of calling itself
/// until its slots fill and every call times out. Too long a chain is refused too.
package struct GatewayChain: Sendable, Equatable {
    /// The header, and the job field the endpoint server records it in.
    package static let header = "X-Gateway-Chain"
    package static let jobField = "gatewayChain"
    /// More gateways in a row than any sane set-up has.
    package static let maxLength = 8
    /// The longest id taken (a gateway's own are 16 hex digits): a client's header must not be
    /// copied upstream, and into every message, at whatever length it chose.
    package static let maxIDLength = 64

    /// The instance ids passed so far, oldest first.
    package let instances: [String]

    /// The header's value as received (nil: the request came from a client, not a gateway).
    package init(_ header: String?) {
        instances = (header ?? "").split(separator: ",").map { String($0.filter { !$0.isWhitespace }) }.filter { !$0.isEmpty }
    }

    /// Why a request must not go on through a gateway: a loop or too many gateways (508), or a
    /// header no gateway wrote (400).
    package struct Refusal: Sendable, Equatable {
        package let status: Int
        package let message: String
    }

    /// Why the job must not go on through the gateway `instance`; nil when it may.
    package func refusal(at instance: String) -> Refusal? {
        if let bad = instances.first(where: { $0.utf8.count > Self.maxIDLength || !$0.utf8.allSatisfy(Self.isIDByte) }) {
            return Refusal(
                status: 400,
                message: "\(Self.header) holds an id no gateway wrote (\(bad.utf8.count) bytes, starting \(String(bad.prefix(16)).debugDescription)): "
                    + "ids are at most \(Self.maxIDLength) letters, digits, '-' or '_'")
        }
        if instances.contains(instance) {
            return Refusal(
                status: 508,
                message: "the job came back to this gateway through its own upstreams (\(Self.header): \(instances.joined(separator: " → "))): "
                    + "an upstream's url, openai_url or mcp_url points at this gateway; fix the configuration")
        }
        if instances.count >= Self.maxLength {
            return Refusal(
                status: 508,
                message: "the job has passed \(instances.count) gateways already (\(Self.header)); at most \(Self.maxLength) in a row are followed")
        }
        return nil
    }

    private static func isIDByte(_ byte: UInt8) -> Bool {
        (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")) || (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z"))
            || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z")) || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_")
    }

    /// The header to send upstream from `instance`.
    package func forwarded(by instance: String) -> (name: String, value: String) {
        (Self.header, (instances + [instance]).joined(separator: ","))
    }
}

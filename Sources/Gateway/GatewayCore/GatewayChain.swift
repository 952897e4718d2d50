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

    /// The instance ids passed so far, oldest first.
    package let instances: [String]

    /// The header's value as received (nil: the request came from a client, not a gateway).
    package init(_ header: String?) {
        instances = (header ?? "").split(separator: ",").map { String($0.filter { !$0.isWhitespace }) }.filter { !$0.isEmpty }
    }

    /// Why the job must not go on through the gateway `instance`; nil when it may.
    package func refusal(at instance: String) -> String? {
        if instances.contains(instance) {
            return "the job came back to this gateway through its own upstreams (\(Self.header): \(instances.joined(separator: " → "))): "
                + "an upstream's url, openai_url or mcp_url points at this gateway; fix the configuration"
        }
        if instances.count >= Self.maxLength {
            return "the job has passed \(instances.count) gateways already (\(Self.header)); at most \(Self.maxLength) in a row are followed"
        }
        return nil
    }

    /// The header to send upstream from `instance`.
    package func forwarded(by instance: String) -> (name: String, value: String) {
        (Self.header, (instances + [instance]).joined(separator: ","))
    }
}

/// Where a cluster node listens, as the cluster names it (`CLUSTER SLOTS`, `MOVED`, `ASK`).
package struct ClusterNodeAddress: Hashable, Sendable, CustomStringConvertible {
    package var host: String
    package var port: Int

    package init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Reads `host:port` as redirections give it: the port follows the last colon (an IPv6 host
    /// comes unbracketed). An empty host means the node that answered (`fallbackHost`): Redis 7
    /// leaves it out when it does not know the address clients reach the node by.
    package init?(_ text: Substring, fallbackHost: String) {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]),
            (1...65535).contains(port)
        else { return nil }
        var host = text[..<colon]
        if host.hasPrefix("["), host.hasSuffix("]") { host = host.dropFirst().dropLast() }
        self.init(host: host.isEmpty ? fallbackHost : String(host), port: port)
    }

    /// `host:port` (`[host]:port` for IPv6), as `RedisConfiguration.server` writes it.
    package var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

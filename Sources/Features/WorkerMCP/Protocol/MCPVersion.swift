/// The protocol revisions served on one endpoint, and what tells them apart.
enum MCPVersion {
    /// Reached through `initialize`; a session of these needs nothing kept by the server.
    static let handshake = ["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"]
    /// Stateless by design: every request carries its version and the client's capabilities.
    static let modern = ["2026-07-28"]
    static let all = handshake + modern
    static let latestHandshake = "2025-11-25"
    /// Assumed when a handshake-era request carries no `MCP-Protocol-Version` (the transport spec's rule).
    static let assumedWithoutHeader = "2025-03-26"

    /// The `_meta` keys of the per-request envelope (2026-07-28).
    static let protocolVersionKey = "io.modelcontextprotocol/protocolVersion"
    static let clientCapabilitiesKey = "io.modelcontextprotocol/clientCapabilities"
    static let serverInfoKey = "io.modelcontextprotocol/serverInfo"
}

import WorkerRuntime

/// `MCP_ALLOWED_HOSTS` and `MCP_ALLOWED_ORIGINS`: names beyond the defaults (loopback, the address
/// served on, RunPod's endpoint host) that the `Host` and `Origin` headers of requests to any
/// route but the health check may carry. An entry is a host name, `*.suffix`, or `*` for any.
/// (The names say MCP because MCP's specification asked for the check first; it guards every route.)
package struct HostAccess: Sendable, Equatable {
    package var allowedHosts: [String] = []
    /// Whole origins (`https://app.example.com`), host patterns as above, or `*`.
    package var allowedOrigins: [String] = []

    package init(allowedHosts: [String] = [], allowedOrigins: [String] = []) {
        self.allowedHosts = allowedHosts
        self.allowedOrigins = allowedOrigins
    }

    /// A comma-separated list of host names, `*.suffix` patterns or `*` (and, for origins, whole
    /// `scheme://host[:port]` origins), lower-cased.
    static func patterns(_ raw: String?, _ variable: String, origins: Bool) throws(ConfigurationError) -> [String] {
        guard let raw else { return [] }
        var entries: [String] = []
        for part in raw.split(separator: ",") {
            let entry = trimmed(String(part)).lowercased()
            guard !entry.isEmpty else { continue }
            var hostPart = entry
            if origins, let marker = entry.firstRange(of: "://") {
                // A whole origin: a scheme and a host (with an optional port), no path.
                let scheme = entry[..<marker.lowerBound]
                hostPart = String(entry[marker.upperBound...])
                if scheme.isEmpty || !scheme.allSatisfy({ $0.isLetter }) || hostPart.contains("/") { hostPart = "" }
            }
            let name = hostPart.hasPrefix("*.") ? String(hostPart.dropFirst(2)) : hostPart
            let valid = entry == "*" || (!name.isEmpty && name.allSatisfy { $0.isLetter || $0.isNumber || "-.:[]_".contains($0) })
            guard valid else {
                throw .invalidValue(
                    variable, raw,
                    expected: "a comma-separated list of host names, *.suffix patterns or *"
                        + (origins ? ", or origins such as https://app.example.com" : ""))
            }
            entries.append(entry)
        }
        return entries
    }
}

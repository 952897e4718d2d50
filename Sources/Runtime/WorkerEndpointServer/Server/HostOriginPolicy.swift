import WorkerRuntime

/// Which `Host` and `Origin` headers the endpoint server answers, on every route but the health
/// check (`RequestGuardMiddleware`). Host checks stop DNS rebinding (a web page whose name
/// suddenly resolves to 127.0.0.1) from reaching a server that needs no key; Origin checks stop
/// any browser page of a foreign site, key or not. A request without `Origin` is not a browser's
/// cross-site request; one without `Host` (HTTP/1.0) cannot be a rebinding browser's.
package struct HostOriginPolicy: Sendable, Equatable {
    /// Host patterns: `name` (without a port, lower-cased), `*.suffix` or `*`.
    package let hosts: [String]
    package let origins: [String]

    package enum Denial: Equatable, Sendable {
        /// 403: a browser page of another site.
        case foreignOrigin(String)
        /// 421: a name this server was not told it answers to.
        case foreignHost(String)

        package var status: Int {
            switch self {
            case .foreignOrigin: return 403
            case .foreignHost: return 421
            }
        }

        package var message: String {
            switch self {
            case .foreignOrigin(let origin):
                return "Origin '\(origin)' is not allowed to call this server; add it to MCP_ALLOWED_ORIGINS to allow it"
            case .foreignHost(let host):
                return "Host '\(host)' is not a name this server answers to; add it to MCP_ALLOWED_HOSTS to allow it"
            }
        }
    }

    /// `hosts` as bytes, and whether one of them is `*`: the Host check runs on every request,
    /// so it compares bytes and allocates nothing.
    private let hostPatterns: [[UInt8]]
    private let anyHost: Bool

    package init(hosts: [String], origins: [String]) {
        // Normalized once: the Host check runs on every request.
        self.hosts = hosts.map { $0.hasPrefix("*") ? $0.lowercased() : Self.hostName($0) }
        self.origins = origins
        self.hostPatterns = self.hosts.map { Array($0.utf8) }
        self.anyHost = self.hosts.contains("*")
    }

    package static func == (a: Self, b: Self) -> Bool { a.hosts == b.hosts && a.origins == b.origins }

    /// Loopback names, the address served on, RunPod's names for the endpoint, and
    /// `MCP_ALLOWED_HOSTS`. With an API key and no hosts configured, any Host is fine (a page
    /// rebinding a name cannot supply the key); so it is in load-balancing mode without
    /// `MCP_ALLOWED_HOSTS`: the worker is reached only through RunPod's proxy, which checks the
    /// caller's key and whose forwarded `Host` is not documented (a guess would refuse every
    /// request), and no browser can rebind a name onto a worker's address.
    package init(server: ServerConfiguration, endpointID: String?) {
        var hosts = ["localhost", "127.0.0.1", "::1"]
        if !["0.0.0.0", "::", "[::]"].contains(server.host) { hosts.append(server.host.lowercased()) }
        if let id = endpointID?.lowercased() { hosts.append("\(id).api.runpod.ai") }
        if server.kind == .loadBalancing { hosts.append("*.api.runpod.ai") }
        hosts += server.access.allowedHosts
        if server.access.allowedHosts.isEmpty, server.apiKey != nil || server.kind == .loadBalancing { hosts.append("*") }
        self.init(hosts: hosts, origins: server.access.allowedOrigins)
    }

    package func check(host: String?, origin: String?) -> Denial? {
        if let host, !anyHost, !Self.hostBytes(of: host, { host in hostPatterns.contains { Self.matches(host, $0) } }) {
            return .foreignHost(host)
        }
        guard let origin else { return nil }
        let requestHost = host.map(Self.hostName)
        let lowered = origin.lowercased()
        if origins.contains("*") || origins.contains(lowered) { return nil }
        // `null` (a sandboxed or file page) has no host: foreign unless allowed by name above.
        let parts = lowered.split(separator: "/", omittingEmptySubsequences: true)
        guard parts.count >= 2, parts[0].hasSuffix(":"), lowered.contains("://") else { return .foreignOrigin(origin) }
        let originHost = Self.hostName(String(parts[1]))
        if originHost == requestHost { return nil }
        let named = hostPatterns.filter { $0 != [UInt8(ascii: "*")] } + origins.filter { !$0.contains("://") }.map { Array(Self.hostName($0).utf8) }
        var name = originHost
        let allowed = name.withUTF8 { host in named.contains { Self.matches(host, $0) } }
        return allowed ? nil : .foreignOrigin(origin)
    }

    /// Hands `body` the host part of an authority (`Example.com:8000` → `Example.com`,
    /// `[::1]:8000` → `::1`), as bytes: the Host check runs on every request and allocates
    /// nothing. A port is digits: in `localhost:80@evil.com` or `localhost:80.evil.com` the whole
    /// value is the host, which is no name of ours.
    private static func hostBytes<T>(of authority: String, _ body: (UnsafeBufferPointer<UInt8>) -> T) -> T {
        var authority = authority
        return authority.withUTF8 { bytes in
            var start = 0
            var end = bytes.count
            if end > 0, bytes[0] == UInt8(ascii: "[") {
                start = 1
                end = bytes[1...].firstIndex(of: UInt8(ascii: "]")) ?? bytes.count
            } else {
                var colons = 0
                var colon = 0
                for index in 0..<bytes.count where bytes[index] == UInt8(ascii: ":") {
                    colons += 1
                    colon = index
                }
                if colons == 1, bytes[(colon + 1)...].allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) { end = colon }
            }
            return body(UnsafeBufferPointer(rebasing: bytes[start..<end]))
        }
    }

    /// A host name's bytes against one normalized pattern (lower-cased): `name`, `*.suffix` or `*`.
    private static func matches(_ host: UnsafeBufferPointer<UInt8>, _ pattern: [UInt8]) -> Bool {
        func lower(_ byte: UInt8) -> UInt8 { byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") ? byte | 0x20 : byte }
        if pattern == [UInt8(ascii: "*")] { return true }
        if pattern.count >= 2, pattern[0] == UInt8(ascii: "*"), pattern[1] == UInt8(ascii: ".") {
            let suffix = pattern.count - 1
            guard host.count > suffix else { return false }
            let offset = host.count - suffix
            for index in 0..<suffix where lower(host[offset + index]) != pattern[1 + index] { return false }
            return true
        }
        guard host.count == pattern.count else { return false }
        for index in 0..<host.count where lower(host[index]) != pattern[index] { return false }
        return true
    }

    /// `Example.com:8000` → `example.com`; `[::1]:8000` → `::1` (as `hostBytes` takes it apart).
    package static func hostName(_ value: String) -> String {
        hostBytes(of: value) { String(decoding: $0, as: UTF8.self) }.lowercased()
    }
}

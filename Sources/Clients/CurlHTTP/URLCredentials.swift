/// What of a URL may be shown, and where RunPod's own API key may be sent.
///
/// RunPod's key (`RUNPOD_API_KEY`) opens the whole account: a worker sends it only to RunPod's own
/// API over HTTPS, and to any other host only when a key for that host was set explicitly
/// (`ENDPOINT_API_KEY`, `LLM_API_KEY`). Logs and errors show URLs without their credentials.
package enum URLCredentials {
    /// RunPod's own domains: `runpod.ai` and `runpod.io`, and every name under them
    /// (`api.runpod.ai`, `<id>.api.runpod.ai`). Not `runpod.net`: a pod's HTTP proxy
    /// (`<pod>-<port>.proxy.runpod.net`) reaches whatever the pod's renter runs.
    package static let runPodDomains = ["runpod.ai", "runpod.io"]

    /// Whether `url` is an `https://` URL on one of `runPodDomains`: the only place RunPod's key
    /// goes without being set for it. Anything doubtful (another scheme, a backslash, an IP
    /// address, a host that does not parse) is not.
    package static func mayReceiveRunPodKey(_ url: String) -> Bool {
        guard url.lowercased().hasPrefix("https://"), let host = host(of: url) else { return false }
        return runPodDomains.contains { host == $0 || host.hasSuffix("." + $0) }
    }

    /// The host of an `http(s)://` URL, lower-cased, without user information, port or a final
    /// dot; nil when there is none, or when it holds anything but letters, digits, `-` and `.`
    /// (an IPv6 literal, a percent-escape: such a host is never RunPod's).
    package static func host(of url: String) -> String? {
        guard !url.contains("\\"), let start = authorityStart(url) else { return nil }
        let rest = url[start...]
        let authority = rest.prefix { $0 != "/" && $0 != "?" && $0 != "#" }
        let hostAndPort = authority.lastIndex(of: "@").map { authority[authority.index(after: $0)...] } ?? authority
        var host = String(hostAndPort.prefix { $0 != ":" }).lowercased()
        if host.hasSuffix(".") { host.removeLast() }
        guard !host.isEmpty, host.utf8.allSatisfy({ isHostByte($0) }) else { return nil }
        return host
    }

    /// `url` as logs and errors may show it: user information (a name and password, or a token in
    /// their place) becomes `***`, and so does every value of the query (`?key=***`; the names
    /// stay). Text that is not a URL is returned as it is.
    package static func redacted(_ url: String) -> String {
        guard let start = authorityStart(url) else { return url }
        let rest = url[start...]
        let authorityEnd = rest.firstIndex { $0 == "/" || $0 == "?" || $0 == "#" } ?? url.endIndex
        let authority = url[start..<authorityEnd]
        var shown = String(url[..<start])
        if let at = authority.lastIndex(of: "@") {
            shown += "***"
            shown += authority[at...]
        } else {
            shown += authority
        }
        let tail = url[authorityEnd...]
        if let question = tail.firstIndex(of: "?") {
            shown += tail[..<question]
            let query = tail[tail.index(after: question)...].prefix { $0 != "#" }
            let pairs = query.split(separator: "&", omittingEmptySubsequences: false).map { pair -> String in
                guard let equals = pair.firstIndex(of: "=") else { return pair.isEmpty ? "" : "***" }
                return String(pair[..<equals]) + "=***"
            }
            shown += "?" + pairs.joined(separator: "&")
        } else {
            shown += tail
        }
        return shown
    }

    /// Where the authority begins: after `scheme://`.
    private static func authorityStart(_ url: String) -> String.Index? {
        guard let colon = url.firstIndex(of: ":") else { return nil }
        let scheme = url[..<colon]
        guard !scheme.isEmpty, scheme.utf8.allSatisfy({ isSchemeByte($0) }), url[colon...].hasPrefix("://") else { return nil }
        return url.index(colon, offsetBy: 3)
    }

    private static func isHostByte(_ byte: UInt8) -> Bool {
        (byte >= 0x61 && byte <= 0x7A) || (byte >= 0x30 && byte <= 0x39) || byte == 0x2D || byte == 0x2E
    }

    private static func isSchemeByte(_ byte: UInt8) -> Bool {
        let lower = byte | 0x20
        return (lower >= 0x61 && lower <= 0x7A) || (byte >= 0x30 && byte <= 0x39) || byte == 0x2B || byte == 0x2D || byte == 0x2E
    }
}

/// Where the Redis server is and how to talk to it, read once (`REDIS_URL` and friends).
public struct RedisConfiguration: Sendable, Equatable {
    public var host: String
    public var port: Int
    public var user: String?
    public var password: String?
    public var database: Int
    /// `rediss://`: TLS, with the server's certificate checked against the system's CAs or
    /// `caFile`, and its name against `host`.
    public var tls: Bool
    /// `?insecure=true`: TLS without checking the certificate (only when asked for by name).
    public var insecureTLS: Bool
    /// `REDIS_CA_FILE`: a PEM file of the CA that signed the server's certificate.
    public var caFile: String?
    /// `REDIS_POOL_SIZE` (default 8): connections open at most; callers beyond wait for one.
    public var poolSize: Int
    /// `REDIS_CONNECT_TIMEOUT` (seconds, default 5): TCP and TLS set-up, AUTH and SELECT.
    public var connectTimeout: Duration
    /// `REDIS_TIMEOUT` (seconds, default 5): a command's (or pipeline's) round trip, and the
    /// longest a caller waits for a free connection.
    public var commandTimeout: Duration
    /// `REDIS_MAX_REPLY_BYTES` (default 512 MiB, Redis's own largest value): a larger reply
    /// closes the connection with an error instead of growing memory without end.
    public var maxReplyBytes: Int

    /// `host:port`, for errors and logs.
    public var server: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

    public init(
        host: String = "127.0.0.1", port: Int = 6379, user: String? = nil, password: String? = nil, database: Int = 0,
        tls: Bool = false, insecureTLS: Bool = false, caFile: String? = nil, poolSize: Int = 8,
        connectTimeout: Duration = .seconds(5), commandTimeout: Duration = .seconds(5), maxReplyBytes: Int = 512 << 20
    ) {
        self.host = host
        self.port = port
        self.user = user
        self.password = password
        self.database = database
        self.tls = tls
        self.insecureTLS = insecureTLS
        self.caFile = caFile
        self.poolSize = poolSize
        self.connectTimeout = connectTimeout
        self.commandTimeout = commandTimeout
        self.maxReplyBytes = maxReplyBytes
    }

    /// Reads `redis://[user:password@]host[:port][/db][?insecure=true]` (or `rediss://`).
    /// User and password may be percent-encoded; `[::1]` names an IPv6 host.
    public init(url: String) throws(RedisError) {
        self.init()
        let schemeEnd: String.Index
        if url.hasPrefix("redis://") {
            schemeEnd = url.index(url.startIndex, offsetBy: 8)
        } else if url.hasPrefix("rediss://") {
            schemeEnd = url.index(url.startIndex, offsetBy: 9)
            tls = true
        } else {
            throw .invalidURL(url, "the scheme must be redis:// or rediss://")
        }
        var rest = Substring(url[schemeEnd...])
        if let question = rest.firstIndex(of: "?") {
            for pair in rest[rest.index(after: question)...].split(separator: "&") {
                let parts = pair.split(separator: "=", maxSplits: 1)
                let name = parts.first.map(String.init) ?? ""
                let value = parts.count > 1 ? String(parts[1]) : ""
                switch name {
                case "insecure":
                    guard value == "true" || value == "false" else { throw .invalidURL(url, "insecure must be true or false") }
                    insecureTLS = value == "true"
                case "db":
                    guard let db = Int(value), db >= 0 else { throw .invalidURL(url, "db must be a whole number") }
                    database = db
                default:
                    throw .invalidURL(url, "unknown option \(name) (known: insecure, db)")
                }
            }
            rest = rest[..<question]
        }
        if let slash = rest.firstIndex(of: "/") {
            let path = rest[rest.index(after: slash)...]
            if !path.isEmpty {
                guard let db = Int(path), db >= 0 else { throw .invalidURL(url, "the path must be a database number") }
                database = db
            }
            rest = rest[..<slash]
        }
        if let at = rest.lastIndex(of: "@") {
            let credentials = rest[..<at]
            rest = rest[rest.index(after: at)...]
            if let colon = credentials.firstIndex(of: ":") {
                let name = try Self.percentDecoded(credentials[..<colon], url)
                user = name.isEmpty ? nil : name
                password = try Self.percentDecoded(credentials[credentials.index(after: colon)...], url)
            } else {
                // `redis://secret@host`: a lone credential is a password, as redis-cli reads it.
                password = try Self.percentDecoded(credentials, url)
            }
        }
        var hostPart = rest
        if hostPart.hasPrefix("[") {
            guard let close = hostPart.firstIndex(of: "]") else { throw .invalidURL(url, "an IPv6 host needs its closing ]") }
            host = String(hostPart[hostPart.index(after: hostPart.startIndex)..<close])
            hostPart = hostPart[hostPart.index(after: close)...]
            if !hostPart.isEmpty {
                guard hostPart.hasPrefix(":") else { throw .invalidURL(url, "unexpected text after the host") }
                hostPart = hostPart.dropFirst()
                port = try Self.port(hostPart, url)
            }
        } else if let colon = hostPart.firstIndex(of: ":") {
            host = String(hostPart[..<colon])
            port = try Self.port(hostPart[hostPart.index(after: colon)...], url)
        } else {
            host = String(hostPart)
        }
        guard !host.isEmpty else { throw .invalidURL(url, "the host is missing") }
        if insecureTLS && !tls { throw .invalidURL(url, "insecure=true needs rediss://") }
    }

    /// Reads `REDIS_URL` and the tuning variables; nil when `REDIS_URL` is unset or empty. The
    /// tuning variables are checked either way: one set wrong beside a missing `REDIS_URL` would
    /// otherwise pass unnoticed until the URL is added.
    public static func fromEnvironment(_ env: [String: String]) throws(RedisError) -> RedisConfiguration? {
        func number(_ name: String, _ range: ClosedRange<Double>) throws(RedisError) -> Double? {
            guard let raw = env[name], !raw.isEmpty else { return nil }
            guard let value = Double(raw), range.contains(value) else {
                throw .invalidSetting(name, raw, expected: "a number from \(range.lowerBound) to \(range.upperBound)")
            }
            return value
        }
        let size = try number("REDIS_POOL_SIZE", 1...1024)
        let connect = try number("REDIS_CONNECT_TIMEOUT", 0.001...3600)
        let command = try number("REDIS_TIMEOUT", 0.001...3600)
        let reply = try number("REDIS_MAX_REPLY_BYTES", 1024...Double(1 << 40))
        guard let url = env["REDIS_URL"], !url.isEmpty else { return nil }
        var configuration = try RedisConfiguration(url: url)
        if let ca = env["REDIS_CA_FILE"], !ca.isEmpty { configuration.caFile = ca }
        if let size { configuration.poolSize = Int(size) }
        if let connect { configuration.connectTimeout = .milliseconds(Int(connect * 1000)) }
        if let command { configuration.commandTimeout = .milliseconds(Int(command * 1000)) }
        if let reply { configuration.maxReplyBytes = Int(reply) }
        return configuration
    }

    private static func port(_ text: Substring, _ url: String) throws(RedisError) -> Int {
        guard let port = Int(text), (1...65535).contains(port) else { throw .invalidURL(url, "the port must be 1 to 65535") }
        return port
    }

    private static func percentDecoded(_ text: Substring, _ url: String) throws(RedisError) -> String {
        var bytes: [UInt8] = []
        var index = text.utf8.startIndex
        let utf8 = text.utf8
        while index != utf8.endIndex {
            let byte = utf8[index]
            if byte == UInt8(ascii: "%") {
                let high = utf8.index(after: index)
                guard high != utf8.endIndex, utf8.index(after: high) != utf8.endIndex,
                    let value = UInt8(String(decoding: [utf8[high], utf8[utf8.index(after: high)]], as: UTF8.self), radix: 16)
                else { throw .invalidURL(url, "a % in the credentials must start a %XX escape") }
                bytes.append(value)
                index = utf8.index(high, offsetBy: 2)
            } else {
                bytes.append(byte)
                index = utf8.index(after: index)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// A failed Redis call: names the server, the command and what went wrong, and says what to do.
public struct RedisError: Error, CustomStringConvertible, Sendable {
    private enum Code: Sendable, Equatable {
        case invalidURL
        case invalidSetting
        case connect
        case tls
        case authentication
        case timeout
        case connectionLost
        case protocolViolation
        case replyTooLarge
        case server
        case poolExhausted
        case shutDown
        case unexpectedReply
        case crossSlot
        case tooManyRedirects
        case notACluster
        case clusterUnreachable
        case nodeUnreachable
        case slotUncovered
    }

    private let code: Code
    /// `host:port` of the server, or the URL when it could not be read.
    public let server: String
    /// The command's name (`GET`), or the step (`connect`).
    public let command: String
    public let reason: String

    private init(_ code: Code, server: String, command: String, reason: String) {
        self.code = code
        self.server = server
        self.command = command
        self.reason = reason
    }

    package static func invalidURL(_ url: String, _ reason: String) -> Self {
        Self(.invalidURL, server: redactedURL(url), command: "configuration", reason: reason)
    }
    package static func invalidSetting(_ name: String, _ value: String, expected: String) -> Self {
        Self(.invalidSetting, server: "configuration", command: "\(name)=\(value)", reason: expected)
    }
    package static func connect(_ server: String, _ reason: String) -> Self {
        Self(.connect, server: server, command: "connect", reason: reason)
    }
    package static func tls(_ server: String, _ reason: String) -> Self {
        Self(.tls, server: server, command: "TLS handshake", reason: reason)
    }
    package static func authentication(_ server: String, _ command: String, _ reason: String) -> Self {
        Self(.authentication, server: server, command: command, reason: reason)
    }
    package static func timeout(_ server: String, _ command: String, after: Duration) -> Self {
        Self(.timeout, server: server, command: command, reason: "no reply within \(after)")
    }
    package static func connectionLost(_ server: String, _ command: String, _ reason: String) -> Self {
        Self(.connectionLost, server: server, command: command, reason: reason)
    }
    package static func protocolViolation(_ server: String, _ command: String, _ reason: String) -> Self {
        Self(.protocolViolation, server: server, command: command, reason: reason)
    }
    package static func replyTooLarge(_ server: String, _ command: String, limit: Int) -> Self {
        Self(.replyTooLarge, server: server, command: command, reason: "the reply is larger than \(limit) bytes")
    }
    package static func server(_ server: String, _ command: String, _ message: String) -> Self {
        Self(.server, server: server, command: command, reason: message)
    }
    package static func poolExhausted(_ server: String, _ command: String, connections: Int, waited: Duration) -> Self {
        Self(.poolExhausted, server: server, command: command, reason: "all \(connections) connections stayed busy for \(waited)")
    }
    package static func shutDown(_ server: String, _ command: String) -> Self {
        Self(.shutDown, server: server, command: command, reason: "the Redis client was shut down")
    }
    package static func unexpectedReply(_ server: String, _ command: String, _ reply: RedisValue) -> Self {
        Self(.unexpectedReply, server: server, command: command, reason: "unexpected reply \(reply)")
    }

    /// A cluster call whose keys hash to different slots (`keys`: one key of each slot seen, with
    /// the slot), refused before anything was sent.
    package static func crossSlot(_ server: String, _ command: String, keys: [(key: String, slot: Int)]) -> Self {
        let named = keys.map { "\($0.key) (slot \($0.slot))" }.joined(separator: ", ")
        return Self(
            .crossSlot, server: server, command: command,
            reason: "its keys hash to different cluster slots: \(named); a command, script or pipeline runs on one node, "
                + "so every key it touches must share a slot")
    }
    package static func tooManyRedirects(_ server: String, _ command: String, limit: Int, last: String) -> Self {
        Self(.tooManyRedirects, server: server, command: command, reason: "still redirected after \(limit) redirections (last: \(last))")
    }
    package static func notACluster(_ server: String, _ message: String) -> Self {
        Self(.notACluster, server: server, command: "CLUSTER SLOTS", reason: message)
    }
    package static func clusterUnreachable(_ server: String, _ failures: [String]) -> Self {
        Self(
            .clusterUnreachable, server: server, command: "CLUSTER SLOTS",
            reason: "no cluster node answered with its slot map: " + failures.joined(separator: "; "))
    }
    package static func nodeUnreachable(_ server: String, _ command: String, slot: Int?, _ reason: String) -> Self {
        let serving = slot.map { "the cluster node serving slot \($0)" } ?? "the cluster node"
        return Self(
            .nodeUnreachable, server: server, command: command,
            reason: "\(serving) cannot be reached (\(reason)), and the cluster still names it after the slot map was read again")
    }
    package static func slotUncovered(_ server: String, _ command: String, slot: Int) -> Self {
        Self(.slotUncovered, server: server, command: command, reason: "no cluster node serves slot \(slot)")
    }

    /// The same failure, naming the command that needed the connection (`GET (connect)`).
    package func forCommand(_ name: String) -> Self {
        Self(code, server: server, command: "\(name) (\(command))", reason: reason)
    }

    /// An error reply from the server (`ERR`, `WRONGTYPE`, ...): the connection is still good.
    public var isServerError: Bool { code == .server }
    public var isTimeout: Bool { code == .timeout }
    /// The server could not be reached or the connection broke: worth trying again later.
    public var isUnavailable: Bool {
        [.connect, .tls, .timeout, .connectionLost, .poolExhausted, .clusterUnreachable, .nodeUnreachable, .slotUncovered]
            .contains(code)
    }
    /// A failure of `RedisConfiguration.fromEnvironment` as a setting to fix: the variable
    /// (`REDIS_URL` for the URL), the value as given (the URL without its password) and what is
    /// expected. For the callers that turn it into their configuration error.
    package var badSetting: (variable: String, value: String, expected: String) {
        if command == "configuration" {
            return ("REDIS_URL", server, "\(reason): redis://[user:password@]host[:port][/db], or rediss:// for TLS")
        }
        // `NAME=value`, as the setting was given.
        let parts = command.split(separator: "=", maxSplits: 1)
        return (String(parts.first ?? ""), parts.count > 1 ? String(parts[1]) : "", reason)
    }

    /// The server refused the credentials (`AUTH`): trying again cannot help until they change.
    package var isAuthentication: Bool { code == .authentication }
    /// No connection could be made: nothing was sent, so the call may go to another node.
    package var isConnectFailure: Bool { code == .connect }

    public var description: String {
        if code == .invalidSetting { return "\(command) is not valid: expected \(reason)" }
        let hint: String
        switch code {
        case .invalidURL: hint = " (expected redis://[user:password@]host[:port][/db] or rediss://...)"
        case .connect, .connectionLost: hint = " (check that Redis runs there and REDIS_URL is right)"
        case .tls: hint = " (check the server's certificate; REDIS_CA_FILE names a private CA)"
        case .authentication: hint = " (check the user and password in REDIS_URL)"
        case .timeout: hint = " (the server is slow or unreachable; REDIS_TIMEOUT sets the limit)"
        case .poolExhausted: hint = " (raise REDIS_POOL_SIZE, or look for slow commands)"
        case .replyTooLarge: hint = " (REDIS_MAX_REPLY_BYTES sets the limit)"
        case .crossSlot: hint = " (give the keys a common hash tag, as {endpoint}:jobs and {endpoint}:results: only the text in braces is hashed)"
        case .tooManyRedirects: hint = " (the cluster's slots keep moving: try again once the resharding settles)"
        case .notACluster: hint = " (this server is not a Redis Cluster node: use RedisClient for a single server)"
        case .clusterUnreachable: hint = " (check that REDIS_URL names a node of a running Redis Cluster)"
        case .nodeUnreachable: hint = " (bring the node back, or let one of its replicas take over: CLUSTER FAILOVER FORCE on the replica)"
        case .slotUncovered: hint = " (the cluster is down or being set up: check CLUSTER INFO on a node)"
        case .invalidSetting, .protocolViolation, .server, .shutDown, .unexpectedReply: hint = ""
        }
        return "Redis \(server) \(command) failed: \(reason)\(hint)"
    }

    /// The URL without its password.
    static func redactedURL(_ url: String) -> String {
        // Everything between the scheme and the last `@` is credentials.
        guard let at = url.lastIndex(of: "@"), let colon = url.firstIndex(of: ":"), colon < at else { return url }
        let schemeEnd = url.index(colon, offsetBy: 3, limitedBy: at) ?? at
        return String(url[..<schemeEnd]) + "***" + String(url[at...])
    }
}

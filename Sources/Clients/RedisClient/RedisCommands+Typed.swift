import COpenSSL

/// Typed calls for the commands the project uses, on one server and on a cluster alike (each
/// names its keys, by which a cluster routes it). Each throws `RedisError`; a reply of the wrong
/// shape is `unexpectedReply`.
extension RedisCommands {
    /// `GET`: the value, or nil when the key is missing.
    public func get(_ key: String) async throws -> [UInt8]? {
        let key = RedisArgument(key)
        switch try await send(["GET", key], keys: [key]) {
        case .bulk(let bytes): return bytes
        case .null: return nil
        case let other: throw RedisError.unexpectedReply(configuration.server, "GET", other)
        }
    }

    /// `SET` with an optional expiry (`EX`/`PX`, whole milliseconds) and `NX`; false when `NX`
    /// kept an existing value.
    @discardableResult
    public func set(_ key: String, _ value: [UInt8], expiresIn: Duration? = nil, onlyIfAbsent: Bool = false) async throws -> Bool {
        let key = RedisArgument(key)
        var command: RedisCommand = ["SET", key, RedisArgument(bytes: value)]
        if let expiresIn { command += ["PX", RedisArgument(Self.milliseconds(expiresIn))] }
        if onlyIfAbsent { command.append("NX") }
        switch try await send(command, keys: [key]) {
        case .status: return true
        case .null: return false
        case let other: throw RedisError.unexpectedReply(configuration.server, "SET", other)
        }
    }

    /// `DEL`: how many of the keys existed. On a cluster the keys must share a slot.
    @discardableResult
    public func delete(_ keys: [String]) async throws -> Int {
        let keys = keys.map { RedisArgument($0) }
        return try await integer(["DEL"] + keys, keys: keys)
    }

    /// `INCR`: the value after the increment.
    public func increment(_ key: String) async throws -> Int64 {
        let key = RedisArgument(key)
        return Int64(try await integer(["INCR", key], keys: [key]))
    }

    /// `PEXPIRE` (whole milliseconds; `EXPIRE` when whole seconds): false when the key is missing.
    @discardableResult
    public func expire(_ key: String, after: Duration) async throws -> Bool {
        let key = RedisArgument(key)
        let milliseconds = Self.milliseconds(after)
        let command: RedisCommand = milliseconds % 1000 == 0
            ? ["EXPIRE", key, RedisArgument(milliseconds / 1000)]
            : ["PEXPIRE", key, RedisArgument(milliseconds)]
        return try await integer(command, keys: [key]) == 1
    }

    /// `PTTL`: the time left, nil when the key is missing or never expires.
    public func timeToLive(_ key: String) async throws -> Duration? {
        let key = RedisArgument(key)
        let milliseconds = try await integer(["PTTL", key], keys: [key])
        return milliseconds >= 0 ? .milliseconds(milliseconds) : nil
    }

    /// `TTL` as Redis answers it: seconds, -1 with no expiry, -2 for a missing key.
    public func ttl(_ key: String) async throws -> Int {
        let key = RedisArgument(key)
        return try await integer(["TTL", key], keys: [key])
    }

    /// Runs a Lua script by its SHA-1 (`EVALSHA`), sending its text (`EVAL`) only when the server
    /// does not have it cached yet (each node of a cluster caches its own). On a cluster, `keys`
    /// must share a slot: the script runs on that slot's master.
    public func eval(_ script: String, keys: [String] = [], arguments: [RedisArgument] = []) async throws -> RedisValue {
        let keys = keys.map { RedisArgument($0) }
        let tail = [RedisArgument(keys.count)] + keys + arguments
        do {
            return try await send(["EVALSHA", RedisArgument(Self.sha1(script))] + tail, keys: keys)
        } catch let error as RedisError where error.isServerError && error.reason.hasPrefix("NOSCRIPT") {
            return try await send(["EVAL", RedisArgument(script)] + tail, keys: keys)
        }
    }

    /// `PING` (on a cluster: any node).
    public func ping() async throws {
        _ = try await send(["PING"], keys: [])
    }

    private func integer(_ command: RedisCommand, keys: [RedisArgument]) async throws -> Int {
        let reply = try await send(command, keys: keys)
        guard case .integer(let value) = reply else { throw RedisError.unexpectedReply(configuration.server, command.commandName, reply) }
        return Int(value)
    }

    static func milliseconds(_ duration: Duration) -> Int {
        let (seconds, attoseconds) = duration.components
        return max(1, Int(seconds) * 1000 + Int(attoseconds / 1_000_000_000_000_000))
    }

    package static func sha1(_ text: String) -> String {
        var digest = [UInt8](repeating: 0, count: Int(SHA_DIGEST_LENGTH))
        let bytes = Array(text.utf8)
        _ = SHA1(bytes, bytes.count, &digest)
        let hex: [UInt8] = Array("0123456789abcdef".utf8)
        return String(decoding: digest.flatMap { [hex[Int($0 >> 4)], hex[Int($0 & 15)]] }, as: UTF8.self)
    }
}

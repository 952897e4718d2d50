/// Typed blocking reads. Each throws `RedisError`; a reply of the wrong shape is
/// `unexpectedReply`, naming the command.
extension RedisBlockingConnection {
    /// `XREADGROUP GROUP group consumer [COUNT n] BLOCK ms STREAMS key id`: entries handed to
    /// `consumer` (pending for it until `XACK`), as soon as there are any, or empty once `block`
    /// passed with none (rounded to whole milliseconds, at least one: `BLOCK 0`, for ever, is
    /// never sent). `after: "0"` re-reads this consumer's pending entries without blocking.
    public func xreadgroup(
        _ key: String, group: String, consumer: String, count: Int? = nil, block: Duration, after id: String = ">"
    ) async throws -> [RedisStreamEntry] {
        let command = RedisStreams.readGroup(key, group: group, consumer: consumer, count: count, block: block, after: id)
        let reply = try await send(command, blockingFor: block)
        guard let entries = RedisStreamEntry.readReply(reply, key: key) else {
            throw RedisError.unexpectedReply(configuration.server, "XREADGROUP", reply)
        }
        return entries
    }

    /// `BLPOP key ... timeout`: the first value to come to any of `keys`, with its key; nil once
    /// `timeout` passed (whole milliseconds, at least one: `0`, for ever, is never sent). A value
    /// popped as the call was cancelled is lost with the reply: queue jobs on a stream instead.
    public func blpop(_ keys: [String], timeout: Duration) async throws -> (key: String, value: [UInt8])? {
        let command: RedisCommand = ["BLPOP"] + keys.map { RedisArgument($0) } + [RedisArgument(Self.seconds(timeout))]
        let reply = try await send(command, blockingFor: timeout)
        switch reply {
        case .null:
            return nil
        case .array(let pair) where pair.count == 2:
            guard case .bulk(let key) = pair[0], case .bulk(let value) = pair[1] else { break }
            return (String(decoding: key, as: UTF8.self), value)
        default:
            break
        }
        throw RedisError.unexpectedReply(configuration.server, "BLPOP", reply)
    }

    /// Seconds with three decimals, as `BLPOP` takes them (Redis 6 and later), at least 0.001.
    static func seconds(_ duration: Duration) -> String {
        let milliseconds = max(1, RedisStreams.milliseconds(duration))
        let fraction = String(milliseconds % 1000)
        return "\(milliseconds / 1000)." + String(repeating: "0", count: 3 - fraction.count) + fraction
    }
}

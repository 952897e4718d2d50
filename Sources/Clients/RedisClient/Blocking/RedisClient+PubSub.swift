/// Publishing, for `RedisSubscriber`s to hear. Pub/sub delivers only to those subscribed at that
/// moment: announce a result with it, keep the result itself in a key or a stream.
extension RedisClient {
    /// `PUBLISH channel payload`: how many subscribers got it (on a cluster, those of the node
    /// that took it).
    @discardableResult
    public func publish(_ channel: String, _ payload: [UInt8]) async throws -> Int {
        try await subscriberCount(["PUBLISH", RedisArgument(channel), RedisArgument(bytes: payload)])
    }

    /// `SPUBLISH channel payload` (Redis 7): to a shard channel, which on a cluster lives on the
    /// node serving its slot, not on every node.
    @discardableResult
    public func spublish(_ channel: String, _ payload: [UInt8]) async throws -> Int {
        try await subscriberCount(["SPUBLISH", RedisArgument(channel), RedisArgument(bytes: payload)])
    }

    private func subscriberCount(_ command: RedisCommand) async throws -> Int {
        let reply = try await send(command)
        guard case .integer(let count) = reply else { throw RedisError.unexpectedReply(configuration.server, command.commandName, reply) }
        return Int(count)
    }
}

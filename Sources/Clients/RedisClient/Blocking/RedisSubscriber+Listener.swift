extension RedisSubscriber {
    /// The reading task's side: connects, subscribes, reads until the connection fails, and
    /// starts again, until cancelled or the connector shuts down.
    struct Listener: Sendable {
        let connector: RedisConnector
        let channels: [String]
        let shardChannels: [String]
        let buffer: RedisSubscriberBuffer
        let keepAlive: Duration

        /// What carries over from one connection to the next.
        private struct Progress {
            var subscribedBefore = false
            /// `.disconnected` was told for the outage under way.
            var lossTold = false
            /// Failed tries since the last subscription, for the back-off.
            var failures = 0
        }

        /// For errors: what the connection is for.
        private var name: String { channels.isEmpty ? "SSUBSCRIBE" : "SUBSCRIBE" }

        func run() async {
            var progress = Progress()
            while !Task.isCancelled && !connector.isShutDown {
                do {
                    let dedicated = try await connector.open(for: name)
                    defer { dedicated.close() }
                    try await withTaskCancellationHandler {
                        try await listen(on: dedicated, &progress)
                    } onCancel: {
                        dedicated.interrupt()
                    }
                } catch {
                    if Task.isCancelled || connector.isShutDown { break }
                    if !progress.lossTold {
                        progress.lossTold = true
                        let lost = error as? RedisError ?? .connectionLost(connector.configuration.server, name, "\(error)")
                        buffer.push(.disconnected(lost))
                    }
                    progress.failures += 1
                    // At once the first time (a killed connection to a live server), then 50 ms
                    // doubling to 2 s.
                    if progress.failures > 1 {
                        let delay: Duration = min(.seconds(2), .milliseconds(50) * (1 << min(progress.failures - 2, 6)))
                        do { try await Task.sleep(for: delay) } catch { break }
                    }
                }
            }
            buffer.finish()
        }

        /// Subscribes, then reads until the connection fails (it never returns otherwise). A
        /// `PING` goes out after `keepAlive` of silence; no answer within the command timeout
        /// counts as a lost connection. Anything the server says counts as an answer.
        private func listen(on dedicated: RedisDedicatedConnection, _ progress: inout Progress) async throws {
            guard dedicated.arm() else { throw CancellationError() }
            try Task.checkCancellation()
            let connection = dedicated.connection
            let server = connector.configuration.server
            let timeout = connector.configuration.commandTimeout
            var unconfirmed = Set(channels.map { Channel(name: $0, isShard: false) })
            unconfirmed.formUnion(shardChannels.map { Channel(name: $0, isShard: true) })
            var sending: [RedisCommand] = []
            if !channels.isEmpty { sending.append(["SUBSCRIBE"] + channels.map { RedisArgument($0) }) }
            if !shardChannels.isEmpty { sending.append(["SSUBSCRIBE"] + shardChannels.map { RedisArgument($0) }) }
            var subscribed = false
            var pinged = false
            var deadline = ContinuousClock.now + timeout
            while true {
                let reply = try await connection.receive(sending: sending, until: deadline, as: name)
                sending = []
                guard let reply else {
                    if connector.isShutDown { throw RedisError.shutDown(server, name) }
                    if !subscribed || pinged { throw RedisError.timeout(server, pinged ? "PING" : name, after: timeout) }
                    sending = [["PING"]]
                    pinged = true
                    deadline = .now + timeout
                    continue
                }
                switch try PushedReply(reply, server: server, command: name) {
                case .message(let message):
                    buffer.push(.message(message))
                case .subscribed(let channel):
                    unconfirmed.remove(channel)
                    if !subscribed && unconfirmed.isEmpty {
                        subscribed = true
                        buffer.push(progress.subscribedBefore ? .reconnected : .subscribed)
                        progress = Progress(subscribedBefore: true)
                    }
                case .pong:
                    pinged = false
                case .unsubscribed(let channel):
                    // The server ended it (a cluster moved the shard channel's slot): subscribe
                    // again from scratch, telling the consumer of the gap.
                    throw RedisError.connectionLost(server, name, "the server unsubscribed \(channel.name)")
                }
                deadline = .now + (subscribed && !pinged ? keepAlive : timeout)
            }
        }
    }

    /// A channel and its kind: the same name may be subscribed both ways, and each is confirmed
    /// apart.
    struct Channel: Hashable {
        let name: String
        let isShard: Bool
    }

    /// What a subscribed connection hears (RESP2: arrays whose first element says what they are).
    enum PushedReply {
        case message(RedisPubSubMessage)
        case subscribed(Channel)
        case unsubscribed(Channel)
        case pong

        /// `["message" | "smessage", channel, payload]`, `["subscribe" | "ssubscribe", channel,
        /// count]`, `["unsubscribe" | "sunsubscribe", channel, count]`, `["pong", text]`. An error
        /// reply throws it; any other shape is `unexpectedReply`.
        init(_ reply: RedisValue, server: String, command: String) throws(RedisError) {
            if case .error(let message) = reply { throw .server(server, command, message) }
            guard case .array(let parts) = reply, parts.count >= 2, case .bulk(let kindBytes) = parts[0] else {
                throw .unexpectedReply(server, command, reply)
            }
            let kind = String(decoding: kindBytes, as: UTF8.self)
            if kind == "pong", parts.count == 2 {
                self = .pong
                return
            }
            guard parts.count == 3, case .bulk(let channelBytes) = parts[1] else { throw .unexpectedReply(server, command, reply) }
            let channel = String(decoding: channelBytes, as: UTF8.self)
            switch (kind, parts[2]) {
            case ("message", .bulk(let payload)): self = .message(RedisPubSubMessage(channel: channel, payload: payload))
            case ("smessage", .bulk(let payload)): self = .message(RedisPubSubMessage(channel: channel, payload: payload, isShard: true))
            case ("subscribe", .integer): self = .subscribed(Channel(name: channel, isShard: false))
            case ("ssubscribe", .integer): self = .subscribed(Channel(name: channel, isShard: true))
            case ("unsubscribe", .integer): self = .unsubscribed(Channel(name: channel, isShard: false))
            case ("sunsubscribe", .integer): self = .unsubscribed(Channel(name: channel, isShard: true))
            default: throw .unexpectedReply(server, command, reply)
            }
        }
    }
}

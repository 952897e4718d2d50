import Dispatch

/// One authenticated connection: sends commands formatted by hiredis and reads their replies
/// with hiredis's reader. Blocking within a deadline, so it runs only on its own dispatch queue
/// (`queue`), never on Swift's cooperative pool; the pool lends it to one caller at a time.
package final class RedisConnection: @unchecked Sendable {
    private let socket: RedisSocket
    private let reader = RESPReader()
    private var format = RESPFormat()
    private let server: String
    private let maxReplyBytes: Int
    private let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 << 10, alignment: 16)
    /// Where the connection's blocking calls run.
    package let queue: DispatchQueue
    private var outgoing: [UInt8] = []
    /// Bytes `begin` could not write at once.
    private var pendingWrite: [UInt8] = []
    /// Set once an error left the stream in an unknown state; the pool then closes it.
    package private(set) var isBroken = false

    private init(socket: RedisSocket, configuration: RedisConfiguration, queue: DispatchQueue) {
        self.socket = socket
        self.server = configuration.server
        self.maxReplyBytes = configuration.maxReplyBytes
        self.queue = queue
    }

    deinit {
        buffer.deallocate()
    }

    /// Connects, shakes hands (TLS), authenticates and selects the database, all within the
    /// connect timeout. Blocking: call it on `queue`.
    package static func open(
        _ configuration: RedisConfiguration, tls: RedisTLSContext?, queue: DispatchQueue
    ) throws(RedisError) -> RedisConnection {
        let deadline = ContinuousClock.now + configuration.connectTimeout
        let socket: RedisSocket
        do {
            socket = try RedisSocket.connect(host: configuration.host, port: configuration.port, tls: tls, deadline: deadline)
        } catch {
            switch error {
            case .timedOut: throw .connect(configuration.server, "no connection within \(configuration.connectTimeout)")
            case .closed: throw .connect(configuration.server, "the server closed the connection")
            case .failed(let reason):
                throw reason.hasPrefix("TLS") ? .tls(configuration.server, reason) : .connect(configuration.server, reason)
            }
        }
        let connection = RedisConnection(socket: socket, configuration: configuration, queue: queue)
        var setup: [RedisCommand] = []
        if let password = configuration.password {
            setup.append(configuration.user.map { ["AUTH", RedisArgument($0), RedisArgument(password)] } ?? ["AUTH", RedisArgument(password)])
        }
        if configuration.database != 0 { setup.append(["SELECT", RedisArgument(configuration.database)]) }
        if !setup.isEmpty {
            let replies = try connection.execute(setup, deadline: deadline, timeout: configuration.connectTimeout)
            for (command, reply) in zip(setup, replies) {
                if case .error(let message) = reply {
                    connection.close()
                    throw command.commandName == "AUTH"
                        ? .authentication(configuration.server, "AUTH", message)
                        : .server(configuration.server, command.commandName, message)
                }
            }
        }
        return connection
    }

    /// Sends `commands` in one write and reads one reply for each (error replies included, as
    /// `.error`). Blocking: call it on `queue`. Goes on from where `begin` and `poll` left off.
    package func execute(_ commands: [RedisCommand], deadline: ContinuousClock.Instant, timeout: Duration) throws(RedisError) -> [RedisValue] {
        if exchange == nil { begin(commands) }
        return try step(commands, timeout: timeout) { () throws -> [RedisValue]? in
            if !pendingWrite.isEmpty {
                try socket.write(pendingWrite, deadline: deadline)
                pendingWrite = []
            }
            while true {
                if let replies = try parseReplies(commands) { return replies }
                // A server that never stops sending must not keep the call past its deadline.
                guard ContinuousClock.now < deadline else { throw RedisSocket.Failure.timedOut }
                let count = try socket.read(into: buffer, deadline: deadline)
                try take(count, commands)
            }
        }!
    }

    /// Starts an exchange: formats `commands` and writes what the socket takes at once, without
    /// waiting, so it may run on any thread (the caller's): the request is on its way while the
    /// reply is awaited. `poll` or `execute` finish it.
    package func begin(_ commands: [RedisCommand]) {
        exchange = Exchange(expected: commands.count, started: .now)
        pendingWrite.removeAll(keepingCapacity: true)
        guard !isBroken else { return }
        // Kept between exchanges: a pipeline's buffer is past malloc's small sizes, and each
        // new one would make glibc consolidate its free lists.
        outgoing.removeAll(keepingCapacity: true)
        for command in commands { format.append(command, to: &outgoing) }
        let written = socket.writeWithoutWaiting(outgoing) ?? 0
        if written < outgoing.count { pendingWrite = Array(outgoing[written...]) }
    }

    /// The replies if they are all in, without waiting; nil when some are still on their way.
    package func poll(_ commands: [RedisCommand], timeout: Duration) throws(RedisError) -> [RedisValue]? {
        try step(commands, timeout: timeout) { () throws -> [RedisValue]? in
            // The same limit as a waiting read: a reply found after it is still a timeout.
            if let exchange, ContinuousClock.now - exchange.started > timeout { throw RedisSocket.Failure.timedOut }
            if !pendingWrite.isEmpty {
                guard let written = socket.writeWithoutWaiting(pendingWrite) else { return nil }
                pendingWrite.removeFirst(written)
                if !pendingWrite.isEmpty { return nil }
            }
            while true {
                if let replies = try parseReplies(commands) { return replies }
                if let exchange, ContinuousClock.now - exchange.started > timeout { throw RedisSocket.Failure.timedOut }
                guard let count = try socket.readWithoutWaiting(into: buffer) else { return nil }
                try take(count, commands)
            }
        }
    }

    /// The round trip of the last exchange that completed (zero before the first).
    package private(set) var lastRoundTrip: Duration = .zero

    private struct Exchange {
        let expected: Int
        let started: ContinuousClock.Instant
        var replies: [RedisValue] = []
    }

    /// The exchange in progress, between `begin` and its last reply.
    private var exchange: Exchange?

    /// Runs one step of the exchange; a failure breaks the connection and is named for `commands`.
    private func step(
        _ commands: [RedisCommand], timeout: Duration, _ body: () throws -> [RedisValue]?
    ) throws(RedisError) -> [RedisValue]? {
        guard !isBroken else {
            exchange = nil
            throw .connectionLost(server, Self.name(commands), "the connection broke earlier")
        }
        do {
            guard let replies = try body() else { return nil }
            if let exchange { lastRoundTrip = .now - exchange.started }
            exchange = nil
            return replies
        } catch {
            isBroken = true
            exchange = nil
            socket.close()
            switch error {
            case let error as RedisError: throw error
            case RedisSocket.Failure.timedOut: throw .timeout(server, Self.name(commands), after: timeout)
            case RedisSocket.Failure.closed: throw .connectionLost(server, Self.name(commands), "the server closed the connection")
            case RedisSocket.Failure.failed(let reason): throw .connectionLost(server, Self.name(commands), reason)
            case let error as ReaderFailure: throw .protocolViolation(server, Self.name(commands), error.message)
            default: throw .connectionLost(server, Self.name(commands), "\(error)")
            }
        }
    }

    /// The exchange's replies once all are parsed; nil while some are still to come.
    private func parseReplies(_ commands: [RedisCommand]) throws -> [RedisValue]? {
        guard var current = exchange else { return [] }
        if current.replies.isEmpty { current.replies.reserveCapacity(current.expected) }
        while current.replies.count < current.expected, let reply = try reader.next() {
            if case .error(let message) = reply, message.hasPrefix("NOAUTH") || message.hasPrefix("WRONGPASS") {
                throw RedisError.authentication(server, Self.name(commands), message)
            }
            current.replies.append(reply)
        }
        exchange = current
        return current.replies.count == current.expected ? current.replies : nil
    }

    /// Feeds `count` bytes just read into the reader.
    private func take(_ count: Int, _ commands: [RedisCommand]) throws {
        guard count > 0 else { throw RedisSocket.Failure.closed }
        try reader.feed(UnsafeRawBufferPointer(rebasing: buffer[..<count]))
        if reader.pendingCost > maxReplyBytes { throw RedisError.replyTooLarge(server, Self.name(commands), limit: maxReplyBytes) }
    }

    /// For errors: the command's name, or the pipeline's size and first command.
    private static func name(_ commands: [RedisCommand]) -> String {
        commands.count == 1 ? commands[0].commandName : "pipeline of \(commands.count) (\(commands.first?.commandName ?? ""), ...)"
    }

    /// Closes the socket. Call it on `queue` (or once no call can be running).
    package func close() {
        isBroken = true
        socket.close()
    }
}

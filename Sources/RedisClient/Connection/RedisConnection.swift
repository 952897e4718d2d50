import Dispatch

/// One authenticated connection: sends commands formatted by hiredis and reads their replies
/// with hiredis's reader. Blocking within a deadline, so it runs only on its own dispatch queue
/// (`queue`), never on Swift's cooperative pool; the pool lends it to one caller at a time.
package final class RedisConnection: @unchecked Sendable {
    private let socket: RedisSocket
    private let reader = RESPReader()
    private let server: String
    private let maxReplyBytes: Int
    private let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 << 10, alignment: 16)
    /// Where the connection's blocking calls run.
    package let queue: DispatchQueue
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
    /// `.error`). Blocking: call it on `queue`.
    package func execute(_ commands: [RedisCommand], deadline: ContinuousClock.Instant, timeout: Duration) throws(RedisError) -> [RedisValue] {
        let name = commands.count == 1 ? commands[0].commandName : "pipeline of \(commands.count) (\(commands.first?.commandName ?? ""), ...)"
        guard !isBroken else { throw .connectionLost(server, name, "the connection broke earlier") }
        do {
            var bytes: [UInt8] = []
            for command in commands { RESPFormat.append(command, to: &bytes) }
            try socket.write(bytes, deadline: deadline)
            var replies: [RedisValue] = []
            replies.reserveCapacity(commands.count)
            while replies.count < commands.count {
                if let reply = try reader.next() {
                    if case .error(let message) = reply, message.hasPrefix("NOAUTH") || message.hasPrefix("WRONGPASS") {
                        isBroken = true
                        throw RedisError.authentication(server, name, message)
                    }
                    replies.append(reply)
                    continue
                }
                let count = try socket.read(into: buffer, deadline: deadline)
                guard count > 0 else {
                    isBroken = true
                    throw RedisError.connectionLost(server, name, "the server closed the connection")
                }
                try reader.feed(UnsafeRawBufferPointer(rebasing: buffer[..<count]))
                if reader.pendingBytes > maxReplyBytes {
                    isBroken = true
                    throw RedisError.replyTooLarge(server, name, limit: maxReplyBytes)
                }
            }
            return replies
        } catch let error as RedisError {
            isBroken = true
            socket.close()
            throw error
        } catch let error as RedisSocket.Failure {
            isBroken = true
            socket.close()
            switch error {
            case .timedOut: throw .timeout(server, name, after: timeout)
            case .closed: throw .connectionLost(server, name, "the server closed the connection")
            case .failed(let reason): throw .connectionLost(server, name, reason)
            }
        } catch let error as ReaderFailure {
            isBroken = true
            socket.close()
            throw .protocolViolation(server, name, error.message)
        } catch {
            isBroken = true
            socket.close()
            throw .connectionLost(server, name, "\(error)")
        }
    }

    /// Closes the socket. Call it on `queue` (or once no call can be running).
    package func close() {
        isBroken = true
        socket.close()
    }
}

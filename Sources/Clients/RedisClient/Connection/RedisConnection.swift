import ConnectionPool
import Dispatch

/// One authenticated connection: sends commands framed by `RESPFormat` and reads their replies
/// with hiredis's reader. An exchange moves on without ever blocking (`advance`: write what the
/// socket takes, read what is there, parse it); between steps the caller waits on the client's
/// reactor (`finish`: no thread waits), or in `poll` where a thread may block (`execute`: while
/// connecting, for the benchmark's floor, and on `queue` when there is no reactor). The pool
/// lends it to one caller at a time.
package final class RedisConnection: @unchecked Sendable {
    private let socket: RedisSocket
    private let reader = RESPReader()
    private var format = RESPFormat()
    private let server: String
    private let maxReplyBytes: Int
    private let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 << 10, alignment: 16)
    /// Where the connection opens, and waits when no reactor watches its socket.
    package let queue: DispatchQueue
    /// The reactor that waits for this connection's socket, and the socket there; nil when the
    /// client has none, it refused the socket, or it shut down (then `execute` on `queue` waits).
    private var watch: (reactor: ReadinessReactor, socket: ReadinessReactor.Socket)?
    /// The exchange's request; kept between exchanges: a pipeline's buffer is past malloc's
    /// small sizes, and each new one would make glibc consolidate its free lists.
    private var outgoing: [UInt8] = []
    /// How much of `outgoing` the socket took.
    private var written = 0
    /// Set once an error left the stream in an unknown state; the pool then closes it.
    package private(set) var isBroken = false
    /// The round trip of the last exchange that completed (zero before the first).
    package private(set) var lastRoundTrip: Duration = .zero
    /// The socket's descriptor (-1 once closed), for a holder that duplicates it right after
    /// `open` so that another task can shut the socket down (`RedisDedicatedConnection`).
    package var descriptor: Int32 { socket.descriptor }

    private struct Exchange {
        let expected: Int
        let started: ContinuousClock.Instant
        let deadline: ContinuousClock.Instant
        /// The call's limit, named by the error when it passes.
        let timeout: Duration
        var replies: [RedisValue] = []
    }

    /// The exchange in progress, between `begin` and its last reply.
    private var exchange: Exchange?

    /// How the exchange stands after a step.
    private enum Progress {
        case done([RedisValue])
        /// Nothing more moves until the socket is ready as said.
        case blocked(RedisSocket.Need)
        /// `readSlice` bytes read in this step and more may be there: go on after a yield.
        case paused
    }

    /// The most one step reads: a large reply is read in slices, so that a caller on Swift's
    /// cooperative pool lets other tasks run between them.
    private static let readSlice = 1 << 20

    private init(socket: RedisSocket, configuration: RedisConfiguration, queue: DispatchQueue) {
        self.socket = socket
        self.server = configuration.server
        self.maxReplyBytes = configuration.maxReplyBytes
        self.queue = queue
    }

    deinit {
        // Out of the reactor before the socket (released after this) closes its descriptor.
        if let (reactor, watched) = watch { reactor.remove(watched) }
        buffer.deallocate()
    }

    /// Connects, shakes hands (TLS), authenticates and selects the database, all within the
    /// connect timeout, waiting in `poll`: blocking, so call it on `queue`. Then the socket is
    /// handed to `reactor`, which waits for every later exchange.
    package static func open(
        _ configuration: RedisConfiguration, tls: RedisTLSContext?, queue: DispatchQueue, reactor: ReadinessReactor? = nil
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
        if let reactor, let watched = reactor.add(socket.descriptor) { connection.watch = (reactor, watched) }
        return connection
    }

    /// Starts an exchange: frames `commands` and writes what the socket takes at once, never
    /// waiting, so it may run on any thread (the caller's): the request is on its way while
    /// the reply is awaited. `poll`, `finish` or `execute` go on from there.
    package func begin(_ commands: [RedisCommand], deadline: ContinuousClock.Instant, timeout: Duration) throws(RedisError) {
        exchange = Exchange(expected: commands.count, started: .now, deadline: deadline, timeout: timeout)
        guard !isBroken else { throw brokenEarlier(commands) }
        outgoing.removeAll(keepingCapacity: true)
        written = 0
        for command in commands { format.append(command, to: &outgoing) }
        do {
            _ = try flush()
        } catch {
            throw failure(error, commands)
        }
    }

    /// The replies if they are all in, without waiting; nil while some are still on their way.
    package func poll(_ commands: [RedisCommand]) throws(RedisError) -> [RedisValue]? {
        if case .done(let replies) = try advance(commands) { return replies }
        return nil
    }

    /// Waits for the exchange's replies on the reactor, moving the exchange on whenever the
    /// socket is ready; no thread waits meanwhile. Nil when there is no reactor to wait on (the
    /// client shut it down under way): `execute` on `queue` then finishes the exchange.
    package func finish(_ commands: [RedisCommand]) async throws(RedisError) -> [RedisValue]? {
        while let (reactor, watched) = watch {
            let need: RedisSocket.Need
            switch try advance(commands) {
            case .done(let replies): return replies
            case .paused:
                await Task.yield()
                continue
            case .blocked(let blocked): need = blocked
            }
            guard let deadline = exchange?.deadline else { return nil }
            let wake = await wait(for: need, on: reactor, watched, until: deadline)
            switch wake {
            case .readable: continue
            case .timedOut: throw failure(RedisSocket.Failure.timedOut, commands)
            case .closed: watch = nil
            }
        }
        return nil
    }

    /// Runs an exchange to its end, waiting in `poll` (blocking: on `queue`, or a thread of the
    /// caller's own); starts it first unless `begin` did. One reply for each command, error
    /// replies included (as `.error`).
    package func execute(_ commands: [RedisCommand], deadline: ContinuousClock.Instant, timeout: Duration) throws(RedisError) -> [RedisValue] {
        if exchange == nil { try begin(commands, deadline: deadline, timeout: timeout) }
        while true {
            switch try advance(commands) {
            case .done(let replies): return replies
            case .paused: continue
            case .blocked(let need):
                do {
                    try socket.wait(for: need, deadline: exchange?.deadline ?? deadline)
                } catch {
                    throw failure(error, commands)
                }
            }
        }
    }

    /// For a connection that listens once set up (a subscriber): sends `commands`, if any, and
    /// returns the next reply to arrive, whatever it answers (one of these commands, an earlier
    /// one, or a message the server sent unasked), waiting on the reactor. Nil when none came by
    /// `deadline`, or the reactor shut down: unlike an exchange's timeout that leaves the
    /// connection as it was, since a quiet channel is no failure (the caller decides when silence
    /// means a dead server: an unanswered PING). Not to be mixed with exchanges.
    package func receive(
        sending commands: [RedisCommand] = [], until deadline: ContinuousClock.Instant, as name: String
    ) async throws(RedisError) -> RedisValue? {
        // Errors name what the caller is doing (`SUBSCRIBE`), not what it happened to send last.
        let named: [RedisCommand] = [[RedisArgument(name)]]
        guard !isBroken else { throw brokenEarlier(named) }
        if written == outgoing.count {
            outgoing.removeAll(keepingCapacity: true)
            written = 0
        }
        for command in commands { format.append(command, to: &outgoing) }
        var taken = 0
        do {
            while true {
                if let reply = try reader.next() { return reply }
                let need: RedisSocket.Need
                if let blocked = try flush() {
                    need = blocked
                } else {
                    switch socket.read(into: buffer) {
                    case .moved(let count):
                        try take(count, named)
                        taken += count
                        // A large message is read in slices: other tasks run between them.
                        if taken >= Self.readSlice {
                            taken = 0
                            await Task.yield()
                        }
                        continue
                    case .blocked(let blocked): need = blocked
                    case .closed: throw RedisSocket.Failure.closed
                    case .failed(let reason): throw RedisSocket.Failure.failed(reason)
                    }
                }
                guard let (reactor, watched) = watch else {
                    // No reactor: the wait blocks a thread of the connection's queue, not the caller's.
                    do {
                        try await queue.perform { [self] in try socket.wait(for: need, deadline: deadline) }
                    } catch RedisSocket.Failure.timedOut {
                        return nil
                    }
                    continue
                }
                // As in `finish`: a read wait follows only a read that found nothing.
                let wake = await wait(for: need, on: reactor, watched, until: deadline)
                switch wake {
                case .readable: continue
                case .timedOut: return nil
                case .closed:
                    watch = nil
                    return nil
                }
            }
        } catch {
            throw failure(error, named)
        }
    }

    /// Moves the exchange on as far as it goes without waiting: the rest of the request, then
    /// every byte there is to read until the replies are complete. Stops only where the socket
    /// (and TLS) has nothing more, so a readiness wait may follow.
    /// Waits on the reactor for what the socket said it needs. `advance` waits only after a read
    /// found nothing, in the kernel or inside OpenSSL, so the next arrival is an edge the reactor
    /// sees; a write that must read first (TLS) asks the kernel to look again, to be safe.
    private func wait(
        for need: RedisSocket.Need, on reactor: ReadinessReactor, _ watched: ReadinessReactor.Socket, until deadline: ContinuousClock.Instant
    ) async -> ReadinessReactor.Wake {
        if need == .readable { return await reactor.readable(watched, until: deadline, recheck: written < outgoing.count) }
        return await reactor.writable(watched, until: deadline)
    }

    private func advance(_ commands: [RedisCommand]) throws(RedisError) -> Progress {
        guard !isBroken else { throw brokenEarlier(commands) }
        guard let deadline = exchange?.deadline else { return .done([]) }
        do {
            // A reply found after the deadline is still late, as one waited for would be.
            guard ContinuousClock.now < deadline else { throw RedisSocket.Failure.timedOut }
            if let need = try flush() { return .blocked(need) }
            var taken = 0
            while true {
                if let replies = try parseReplies(commands) { return .done(replies) }
                // A server that never stops sending must not keep the call past its deadline.
                guard ContinuousClock.now < deadline else { throw RedisSocket.Failure.timedOut }
                guard taken < Self.readSlice else { return .paused }
                switch socket.read(into: buffer) {
                case .moved(let count):
                    try take(count, commands)
                    taken += count
                case .blocked(let need): return .blocked(need)
                case .closed: throw RedisSocket.Failure.closed
                case .failed(let reason): throw RedisSocket.Failure.failed(reason)
                }
            }
        } catch {
            throw failure(error, commands)
        }
    }

    /// Writes what is left of the request; what the socket must become first when it takes
    /// no more now.
    private func flush() throws(RedisSocket.Failure) -> RedisSocket.Need? {
        while written < outgoing.count {
            let outcome = outgoing.withUnsafeBytes { bytes in
                socket.write(UnsafeRawBufferPointer(rebasing: bytes[written...]))
            }
            switch outcome {
            case .moved(let count): written += count
            case .blocked(let need): return need
            case .closed: throw .closed
            case .failed(let reason): throw .failed(reason)
            }
        }
        return nil
    }

    /// The exchange's replies once all are parsed (the exchange then ends); nil while some are
    /// still to come.
    private func parseReplies(_ commands: [RedisCommand]) throws -> [RedisValue]? {
        guard var current = exchange else { return [] }
        if current.replies.isEmpty { current.replies.reserveCapacity(current.expected) }
        while current.replies.count < current.expected, let reply = try reader.next() {
            if case .error(let message) = reply, message.hasPrefix("NOAUTH") || message.hasPrefix("WRONGPASS") {
                throw RedisError.authentication(server, Self.name(commands), message)
            }
            current.replies.append(reply)
        }
        guard current.replies.count == current.expected else {
            exchange = current
            return nil
        }
        lastRoundTrip = .now - current.started
        exchange = nil
        return current.replies
    }

    /// Feeds `count` bytes just read into the reader.
    private func take(_ count: Int, _ commands: [RedisCommand]) throws {
        try reader.feed(UnsafeRawBufferPointer(rebasing: buffer[..<count]))
        if reader.pendingCost > maxReplyBytes { throw RedisError.replyTooLarge(server, Self.name(commands), limit: maxReplyBytes) }
    }

    /// Breaks the connection after a failure within an exchange (the stream is in an unknown
    /// state) and names the failure for `commands`.
    private func failure(_ error: any Error, _ commands: [RedisCommand]) -> RedisError {
        let timeout = exchange?.timeout ?? .zero
        isBroken = true
        exchange = nil
        closeSocket()
        switch error {
        case let error as RedisError: return error
        case RedisSocket.Failure.timedOut: return .timeout(server, Self.name(commands), after: timeout)
        case RedisSocket.Failure.closed: return .connectionLost(server, Self.name(commands), "the server closed the connection")
        case RedisSocket.Failure.failed(let reason): return .connectionLost(server, Self.name(commands), reason)
        case let error as ReaderFailure: return .protocolViolation(server, Self.name(commands), error.message)
        default: return .connectionLost(server, Self.name(commands), "\(error)")
        }
    }

    private func brokenEarlier(_ commands: [RedisCommand]) -> RedisError {
        exchange = nil
        return .connectionLost(server, Self.name(commands), "the connection broke earlier")
    }

    /// For errors: the command's name, or the pipeline's size and first command.
    private static func name(_ commands: [RedisCommand]) -> String {
        commands.count == 1 ? commands[0].commandName : "pipeline of \(commands.count) (\(commands.first?.commandName ?? ""), ...)"
    }

    /// Closes the socket, once no call is under way on the connection.
    package func close() {
        isBroken = true
        closeSocket()
    }

    /// Takes the socket out of the reactor (once: its number may be reused right after) and
    /// closes it.
    private func closeSocket() {
        if let (reactor, watched) = watch {
            watch = nil
            reactor.remove(watched)
        }
        socket.close()
    }
}

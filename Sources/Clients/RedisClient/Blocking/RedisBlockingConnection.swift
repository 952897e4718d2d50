import ConnectionPool
import Synchronization

/// One connection of its own for blocking commands (`XREADGROUP … BLOCK`, `BLPOP`), made by
/// `RedisConnector.blockingConnection()`; never a connection of `RedisClient`'s pool.
///
/// - A call may take as long as it blocks plus `REDIS_TIMEOUT` (the round trip): its deadline
///   covers both, so a long `BLOCK` is no timeout, and a server that stopped answering still is.
/// - Cancelling the calling task ends the call at once: the connection is shut down (the only
///   way to end a blocked command from its own connection), the call throws
///   `CancellationError`, and the next call opens a new connection. What the server handed over
///   just before is lost with the reply: a stream's entries stay pending for this consumer
///   (re-read them with `after: "0"`, or let `XAUTOCLAIM` move them); a `BLPOP`'s value is gone.
/// - A call that fails (timeout, reset, the server restarted) closes the connection; the next
///   call opens another. A connection found dropped while idle is replaced and the call tried
///   once more, as `RedisClient` does.
/// - Calls take turns, in order: one waits for the one before it at most its own time limit.
///   Make one per reader that waits at the same time.
public final class RedisBlockingConnection: Sendable {
    private let connector: RedisConnector
    /// A pool of one, for its bookkeeping: calls take turns, and a broken connection makes room
    /// for a new one on the next call. Nothing else shares it.
    private let slot = ConnectionPool<RedisDedicatedConnection>(capacity: 1)
    /// The connection a call is using, for `close()` to interrupt.
    private let current = Mutex<RedisDedicatedConnection?>(nil)
    private let closed = Atomic<Bool>(false)

    init(connector: RedisConnector) {
        self.connector = connector
    }

    deinit {
        for idle in slot.shutdown() { idle.close() }
    }

    public var configuration: RedisConfiguration { connector.configuration }

    /// Runs one command that the server may hold for up to `block` before answering (the
    /// command's own timeout, which it must carry: `BLOCK ms`, `BLPOP`'s seconds). An error reply
    /// throws (`RedisError.isServerError`).
    public func send(_ command: RedisCommand, blockingFor block: Duration) async throws -> RedisValue {
        let limit = max(.zero, block) + configuration.commandTimeout
        let name = command.commandName
        var retried = false
        while true {
            let (dedicated, fresh) = try await lease(name, waitingAtMost: limit)
            let outcome: Result<RedisValue, any Error>
            do {
                outcome = .success(try await exchange(command, on: dedicated, limit: limit))
            } catch {
                outcome = .failure(error)
            }
            release(dedicated)
            switch outcome {
            case .success(.error(let message)):
                throw RedisError.server(configuration.server, name, message)
            case .success(let reply):
                return reply
            case .failure(let error as RedisError)
            where !fresh && !retried && error.isUnavailable && !error.isTimeout && !Task.isCancelled && !closed.load(ordering: .acquiring):
                // Dropped by the server while idle (a restart): nothing ran; once more on a new one.
                retried = true
            case .failure(let error):
                throw error
            }
        }
    }

    /// Ends the call under way (it throws `RedisError` "shut down") and closes the connection;
    /// later calls fail.
    public func close() {
        guard !closed.exchange(true, ordering: .acquiringAndReleasing) else { return }
        for idle in slot.shutdown() { idle.close() }
        current.withLock { $0 }?.interrupt()
    }

    private func lease(_ name: String, waitingAtMost limit: Duration) async throws -> (RedisDedicatedConnection, Bool) {
        guard !closed.load(ordering: .acquiring), !connector.isShutDown else { throw RedisError.shutDown(configuration.server, name) }
        do {
            switch try await slot.lease(waitingAtMost: limit) {
            case .reused(let dedicated):
                return (dedicated, false)
            case .open:
                do {
                    return (try await connector.open(for: name), true)
                } catch {
                    slot.openFailed()
                    throw error
                }
            }
        } catch ConnectionPool<RedisDedicatedConnection>.Failure.timedOut {
            // The call before this one held the connection for all of this call's time.
            throw RedisError.timeout(configuration.server, name, after: limit)
        } catch ConnectionPool<RedisDedicatedConnection>.Failure.shutDown {
            throw RedisError.shutDown(configuration.server, name)
        }
    }

    private func release(_ dedicated: RedisDedicatedConnection) {
        slot.release(dedicated, reusable: dedicated.isUsable)?.close()
    }

    /// Sends from this task and waits on the reactor for the reply (no thread waits meanwhile),
    /// or on the connection's queue when there is no reactor. Cancellation interrupts the
    /// connection, which ends either wait.
    private func exchange(_ command: RedisCommand, on dedicated: RedisDedicatedConnection, limit: Duration) async throws -> RedisValue {
        let connection = dedicated.connection
        let commands = [command]
        current.withLock { $0 = dedicated }
        defer { current.withLock { $0 = nil } }
        return try await withTaskCancellationHandler {
            guard dedicated.arm() else { throw CancellationError() }
            let replies: [RedisValue]
            do {
                // Cancelled before anything was sent: the command never runs.
                try Task.checkCancellation()
                if closed.load(ordering: .acquiring) { throw RedisError.shutDown(configuration.server, command.commandName) }
                let deadline = ContinuousClock.now + limit
                try connection.begin(commands, deadline: deadline, timeout: limit)
                if let done = try await connection.finish(commands) {
                    replies = done
                } else if connector.isShutDown {
                    // The reactor ended with the connector; the exchange is left half done.
                    connection.close()
                    throw RedisError.shutDown(configuration.server, command.commandName)
                } else {
                    replies = try await connection.queue.perform { try connection.execute(commands, deadline: deadline, timeout: limit) }
                }
            } catch {
                let interrupted = dedicated.disarm()
                if closed.load(ordering: .acquiring) { throw RedisError.shutDown(configuration.server, command.commandName) }
                if interrupted { throw CancellationError() }
                throw error
            }
            // Interrupted after the reply came: the reply stands; the connection goes (`isUsable`).
            _ = dedicated.disarm()
            return replies[0]
        } onCancel: {
            dedicated.interrupt()
        }
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// A connection opened outside any pool for one holder (a blocking read, a subscription), and a
/// second descriptor of its socket through which another task can end a call at once.
///
/// Redis cannot abort a blocked command except by closing its connection (or `CLIENT UNBLOCK`
/// from another one, which needs a spare connection, the client's id and the ACL's leave, and
/// races the command's arrival). So a cancelled call shuts the socket down (`interrupt`): the
/// reactor wakes the waiting task, its read finds the connection closed, and the connection is
/// not used again. The socket is shut down through a descriptor of our own (`dup`), never the
/// connection's: that one the connection closes by itself when a call fails, and its number may
/// then belong to another socket of the process by the time the cancellation comes.
package final class RedisDedicatedConnection: Sendable {
    /// Used by its holder only, one call at a time.
    package let connection: RedisConnection
    private let handle: Mutex<Handle>

    fileprivate struct Handle {
        /// Our own descriptor of the socket; -1 once closed.
        var descriptor: Int32
        /// A call is under way: `interrupt` ends it.
        var armed = false
        var interrupted = false
    }

    /// Takes a second descriptor of `connection`'s socket; call right after `open`, on the
    /// thread that opened it. Closes the connection and throws when the process has no
    /// descriptor to spare.
    package init(_ connection: RedisConnection, server: String) throws(RedisError) {
        let original = connection.descriptor
        let duplicate = original >= 0 ? dup(original) : -1
        guard duplicate >= 0 else {
            let reason = String(cString: strerror(errno))
            connection.close()
            throw .connect(server, "dup(): \(reason) (the process may be at its descriptor limit)")
        }
        _ = fcntl(duplicate, F_SETFD, FD_CLOEXEC)
        self.connection = connection
        handle = Mutex(Handle(descriptor: duplicate))
    }

    deinit {
        handle.withLock { closeDuplicate(&$0) }
    }

    /// Whether the next call may use it: not broken, not interrupted.
    package var isUsable: Bool {
        !connection.isBroken && !handle.withLock { $0.interrupted }
    }

    /// Before a call: from now on `interrupt` ends it. False when it was interrupted already.
    package func arm() -> Bool {
        handle.withLock { handle in
            guard !handle.interrupted else { return false }
            handle.armed = true
            return true
        }
    }

    /// After a call: `interrupt` no longer touches the socket. Whether the call was interrupted
    /// (then the connection is done, even if its reply came).
    package func disarm() -> Bool {
        handle.withLock { handle in
            handle.armed = false
            return handle.interrupted
        }
    }

    /// From any task: ends the call under way at once, shutting the socket down both ways (the
    /// server sees the connection close, and a blocked command with it). Nothing between calls.
    package func interrupt() {
        handle.withLock { handle in
            guard handle.armed, !handle.interrupted, handle.descriptor >= 0 else { return }
            handle.interrupted = true
            _ = shutdown(handle.descriptor, Int32(SHUT_RDWR))
        }
    }

    /// Closes the connection; its holder's, with no call under way.
    package func close() {
        connection.close()
        handle.withLock { closeDuplicate(&$0) }
    }
}

/// Closes our descriptor of the socket: the last one, after the connection's own, closes the
/// connection (until then the server sees it open).
private func closeDuplicate(_ handle: inout RedisDedicatedConnection.Handle) {
    guard handle.descriptor >= 0 else { return }
    _ = close(handle.descriptor)
    handle.descriptor = -1
}

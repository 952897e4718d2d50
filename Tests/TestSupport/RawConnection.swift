#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// A plain TCP connection to 127.0.0.1, for tests that need to misbehave as HTTP clients do:
/// write slowly, write a whole body before reading, send nothing, or hold the connection open.
package final class RawConnection: @unchecked Sendable {
    package let fd: Int32

    /// `receiveBuffer` shrinks the socket's receive buffer (set before connecting, so the window
    /// stays small): a client that reads nothing then holds only that much of what is sent to it.
    package init(port: Int, receiveBuffer: Int? = nil) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw RawConnectionError(description: "socket: \(String(cString: strerror(errno)))") }
        if var size = receiveBuffer.map(Int32.init) {
            setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw RawConnectionError(description: "connect to port \(port): \(reason)")
        }
    }

    deinit { close(fd) }

    /// Hangs up both ways at once, as a client that gives up on a request does.
    package func hangUp() {
        shutdown(fd, Int32(SHUT_RDWR))
    }

    /// Writes all of `bytes`; false when the peer closed or reset the connection meanwhile.
    @discardableResult
    package func write(_ bytes: [UInt8]) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if written <= 0 {
                if written < 0 && errno == EINTR { continue }
                return false
            }
            offset += written
        }
        return true
    }

    @discardableResult
    package func write(_ text: String) -> Bool { write(Array(text.utf8)) }

    /// What arrives within `timeout`, until `until` holds for it or the peer closes; `closed` tells
    /// whether it did (a read of 0 or a reset).
    package func read(timeout: Duration, until: (String) -> Bool = { _ in false }) -> (text: String, closed: Bool) {
        var received: [UInt8] = []
        let deadline = ContinuousClock.now + timeout
        var buffer = [UInt8](repeating: 0, count: 65536)
        while ContinuousClock.now < deadline {
            let left = deadline - ContinuousClock.now
            var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&entry, 1, Int32(max(1, left.components.seconds * 1000 + left.components.attoseconds / 1_000_000_000_000_000)))
            if ready < 0 && errno == EINTR { continue }
            guard ready > 0 else { break }
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count <= 0 { return (String(decoding: received, as: UTF8.self), true) }
            received += buffer[0..<count]
            if until(String(decoding: received, as: UTF8.self)) { break }
        }
        return (String(decoding: received, as: UTF8.self), false)
    }

    /// Whether the server has closed the connection (waiting up to `timeout` to find out).
    package func isClosedByPeer(within timeout: Duration) -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let (_, closed) = read(timeout: .milliseconds(100))
            if closed { return true }
        }
        return false
    }
}

package struct RawConnectionError: Error, CustomStringConvertible {
    package let description: String
}

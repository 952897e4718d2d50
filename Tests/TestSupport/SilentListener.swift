#if canImport(Glibc)
import Glibc
#endif
import WorkerRuntimeTesting

/// A TCP listener on 127.0.0.1 that never accepts and never answers: the kernel completes
/// connections into its backlog and keeps what clients send, so a client waits for a reply that
/// never comes (a server that hangs, or a firewall that swallows packets, as a client sees it).
package final class SilentListener: Sendable {
    package let port: Int
    private let descriptor: Int32

    package init() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw TimeoutError(what: "a socket for the silent listener", timeout: .zero) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
        }
        guard bound == 0, listen(fd, 64) == 0 else {
            Glibc.close(fd)
            throw TimeoutError(what: "the silent listener to bind 127.0.0.1", timeout: .zero)
        }
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        port = Int(UInt16(bigEndian: address.sin_port))
        descriptor = fd
    }

    deinit { Glibc.close(descriptor) }
}

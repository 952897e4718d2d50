#if canImport(Glibc)
import Glibc
#endif

/// One-shot checks of a loopback TCP port, for the servers the tests start.
package enum LoopbackSocket {
    /// Whether a server accepts connections on the port now.
    package static func accepts(port: Int) -> Bool {
        withAddress(port) { descriptor, address, length in connect(descriptor, address, length) == 0 }
    }

    /// Whether the port is free to listen on (a cluster node's bus port must be).
    package static func canBind(port: Int) -> Bool {
        withAddress(port) { descriptor, address, length in bind(descriptor, address, length) == 0 }
    }

    private static func withAddress(_ port: Int, _ body: (Int32, UnsafePointer<sockaddr>, socklen_t) -> Bool) -> Bool {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(descriptor) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
    }
}

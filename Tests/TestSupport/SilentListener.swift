#if canImport(Glibc)
import Glibc
#endif

/// A TCP listener on 127.0.0.1 that never accepts and never answers: the kernel completes
/// connections into its backlog and keeps what clients send, so a client waits for a reply that
/// never comes (a server that hangs, or a firewall that swallows packets, as a client sees it).
package final class SilentListener: Sendable {
    package let port: Int
    private let descriptor: Int32

    package init() throws {
        (descriptor, port) = try ScriptedTCPServer.listeningSocket(backlog: 64)
    }

    deinit { Glibc.close(descriptor) }
}

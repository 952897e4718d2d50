#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Synchronization
import TestSupport

/// Answers a connection's first request with the start of a 1 MB bulk string, then sends one
/// byte of it every 5 ms, forever: a reply that keeps coming and never ends, which must not
/// keep a call past its deadline.
final class TricklingServer: Sendable {
    let port: Int
    private let listener: Int32
    private let stopped = Atomic<Bool>(false)

    init() throws {
        let (descriptor, port) = try ScriptedTCPServer.listeningSocket(backlog: 4)
        listener = descriptor
        self.port = port
        let thread = Thread { [self] in serve() }
        thread.start()
    }

    deinit { stop() }

    /// Ends the accept loop, which closes the listener itself (as `ScriptedTCPServer` does, so a
    /// number reused meanwhile is never closed).
    func stop() {
        guard !stopped.exchange(true, ordering: .acquiringAndReleasing) else { return }
        shutdown(listener, Int32(SHUT_RDWR))
    }

    private func serve() {
        defer { close(listener) }
        while !stopped.load(ordering: .acquiring) {
            let client = accept(listener, nil, nil)
            guard client >= 0 else { return }
            var request = [UInt8](repeating: 0, count: 4096)
            _ = read(client, &request, 4096)
            let head = Array("$1000000\r\n".utf8)
            var connected = send(client, head, head.count, Int32(MSG_NOSIGNAL)) == head.count
            var byte = UInt8(ascii: "x")
            while connected && !stopped.load(ordering: .acquiring) {
                usleep(5_000)
                connected = send(client, &byte, 1, Int32(MSG_NOSIGNAL)) == 1
            }
            close(client)
        }
    }
}

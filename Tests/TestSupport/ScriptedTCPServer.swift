#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Synchronization

/// A hostile or broken server on 127.0.0.1: every chunk a connection sends is handed to `answer`,
/// and what it returns is written back (nil closes the connection). For clients of protocols we
/// do not serve ourselves (RESP), where a real server cannot be made to misbehave.
package final class ScriptedTCPServer: Sendable {
    package let port: Int
    private let listener: Int32
    private let connections = Mutex<[Int32]>([])
    private let stopped = Atomic<Bool>(false)
    private let sent = Atomic<Int>(0)

    /// Bytes the kernel accepted from every answer so far: once the client closes, writes fail
    /// and this stops growing (what a server that counts in its own buffers cannot tell).
    package var writtenBytes: Int { sent.load(ordering: .relaxed) }

    package init(answer: @escaping @Sendable (_ received: [UInt8]) -> [UInt8]?) throws {
        let (fd, port) = try Self.listeningSocket(backlog: 16)
        self.port = port
        listener = fd
        let thread = Thread { [self] in acceptLoop(answer) }
        thread.start()
    }

    deinit { stop() }

    /// A TCP socket listening on 127.0.0.1 on a free port.
    package static func listeningSocket(backlog: Int32) throws -> (descriptor: Int32, port: Int) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw POSIXError(.EMFILE) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
        }
        guard bound == 0, listen(fd, backlog) == 0 else {
            close(fd)
            throw POSIXError(.EADDRINUSE)
        }
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return (fd, Int(UInt16(bigEndian: address.sin_port)))
    }

    /// Closes the listener and ends every connection. Connections are shut down under the lock
    /// their threads close them under, so a descriptor number another part of the process has
    /// since been given is never touched.
    package func stop() {
        guard !stopped.exchange(true, ordering: .acquiringAndReleasing) else { return }
        // shutdown wakes the accept loop, which closes the listener itself (a close here could
        // race a new socket taking the same number before the loop's next accept).
        shutdown(listener, Int32(SHUT_RDWR))
        connections.withLock { open in
            for fd in open { shutdown(fd, Int32(SHUT_RDWR)) }
        }
    }

    private func acceptLoop(_ answer: @escaping @Sendable ([UInt8]) -> [UInt8]?) {
        defer { close(listener) }
        while !stopped.load(ordering: .acquiring) {
            let client = accept(listener, nil, nil)
            guard client >= 0 else { return }
            let kept = connections.withLock { open -> Bool in
                guard !stopped.load(ordering: .acquiring) else { return false }
                open.append(client)
                return true
            }
            guard kept else {
                close(client)
                return
            }
            let thread = Thread { [self] in serve(client, answer) }
            thread.start()
        }
    }

    private func serve(_ fd: Int32, _ answer: @Sendable ([UInt8]) -> [UInt8]?) {
        defer {
            connections.withLock { open in
                open.removeAll { $0 == fd }
                close(fd)
            }
        }
        var buffer = [UInt8](repeating: 0, count: 64 << 10)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            guard count > 0, let reply = answer(Array(buffer[..<count])) else { return }
            var offset = 0
            while offset < reply.count {
                let written = reply[offset...].withUnsafeBytes { send(fd, $0.baseAddress, min($0.count, 64 << 10), Int32(MSG_NOSIGNAL)) }
                guard written > 0 else { return }
                offset += written
                sent.add(written, ordering: .relaxed)
            }
        }
    }
}

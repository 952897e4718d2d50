#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import COpenSSL

/// A TCP connection to Redis, plain or TLS (OpenSSL), always non-blocking. Every transfer moves
/// what the socket (and TLS) can move now and otherwise says what it waits for (`IO.blocked`),
/// so the caller decides how to wait: the client's reactor, or `wait` (a `poll` bounded by a
/// deadline) where a thread may block. Used by one holder at a time.
package final class RedisSocket {
    /// Why connecting, a wait or a transfer failed; the connection turns it into a `RedisError`
    /// naming the step or the command.
    package enum Failure: Error {
        case timedOut
        case closed
        case failed(String)
    }

    /// What the socket must become before a transfer can go on. TLS decides for itself: in the
    /// middle of a renegotiation or key update a read may have to write first, and a write read.
    package enum Need: Sendable, Equatable {
        case readable
        case writable
    }

    /// The outcome of one transfer.
    package enum IO {
        /// Bytes moved (always more than zero).
        case moved(Int)
        /// Nothing moved; it can go on once the socket is ready as said.
        case blocked(Need)
        /// The server closed the connection (or reset it).
        case closed
        case failed(String)
    }

    /// The descriptor, for the reactor; -1 once closed.
    package private(set) var descriptor: Int32
    private var ssl: OpaquePointer?

    private init(descriptor: Int32) {
        self.descriptor = descriptor
    }

    deinit {
        close()
    }

    /// Connects (and, with `tls`, shakes hands) before `deadline`, waiting in `poll`: blocking,
    /// so never on Swift's cooperative pool (resolving the name blocks as well).
    package static func connect(
        host: String, port: Int, tls: RedisTLSContext?, deadline: ContinuousClock.Instant
    ) throws(Failure) -> RedisSocket {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        #if canImport(Glibc)
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        #else
        hints.ai_socktype = SOCK_STREAM
        #endif
        var list: UnsafeMutablePointer<addrinfo>? = nil
        let status = getaddrinfo(host, String(port), &hints, &list)
        guard status == 0, let first = list else {
            throw .failed("the name \(host) could not be resolved (\(String(cString: gai_strerror(status))))")
        }
        defer { freeaddrinfo(list) }
        var lastFailure = Failure.failed("no address for \(host)")
        var address: UnsafeMutablePointer<addrinfo>? = first
        while let current = address {
            address = current.pointee.ai_next
            do {
                let socket = try open(current.pointee, deadline: deadline)
                if let tls { try socket.handshake(tls, host: host, deadline: deadline) }
                return socket
            } catch {
                lastFailure = error
                if case .timedOut = error { throw error }
            }
        }
        throw lastFailure
    }

    private static func open(_ address: addrinfo, deadline: ContinuousClock.Instant) throws(Failure) -> RedisSocket {
        let descriptor = socket(address.ai_family, address.ai_socktype, address.ai_protocol)
        guard descriptor >= 0 else { throw .failed("socket(): \(errorText())") }
        let socket = RedisSocket(descriptor: descriptor)
        _ = fcntl(descriptor, F_SETFL, fcntl(descriptor, F_GETFL) | O_NONBLOCK)
        _ = fcntl(descriptor, F_SETFD, FD_CLOEXEC)
        var on: Int32 = 1
        setsockopt(descriptor, Int32(IPPROTO_TCP), TCP_NODELAY, &on, socklen_t(MemoryLayout<Int32>.size))
        setsockopt(descriptor, SOL_SOCKET, SO_KEEPALIVE, &on, socklen_t(MemoryLayout<Int32>.size))
        if Glibc.connect(descriptor, address.ai_addr, address.ai_addrlen) != 0 {
            guard errno == EINPROGRESS else { throw .failed("connect(): \(errorText())") }
            try socket.wait(for: .writable, deadline: deadline)
            var error: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            getsockopt(descriptor, SOL_SOCKET, SO_ERROR, &error, &length)
            guard error == 0 else { throw .failed("connect(): \(String(cString: strerror(error)))") }
        }
        return socket
    }

    private func handshake(_ context: RedisTLSContext, host: String, deadline: ContinuousClock.Instant) throws(Failure) {
        guard let ssl = SSL_new(context.context) else { throw .failed("TLS: \(RedisTLSContext.lastError())") }
        self.ssl = ssl
        SSL_set_fd(ssl, descriptor)
        let isAddress = Self.isIPAddress(host)
        if !isAddress {
            // Server Name Indication (SSL_set_tlsext_host_name is a macro over SSL_ctrl).
            _ = host.withCString { SSL_ctrl(ssl, SSL_CTRL_SET_TLSEXT_HOSTNAME, Int(TLSEXT_NAMETYPE_host_name), UnsafeMutableRawPointer(mutating: $0)) }
        }
        if context.verifies {
            let named = isAddress ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host) : SSL_set1_host(ssl, host)
            guard named == 1 else { throw .failed("TLS: \(host) cannot be checked against a certificate") }
        }
        while true {
            ERR_clear_error()
            let result = SSL_connect(ssl)
            if result == 1 { return }
            switch SSL_get_error(ssl, result) {
            case SSL_ERROR_WANT_READ: try wait(for: .readable, deadline: deadline)
            case SSL_ERROR_WANT_WRITE: try wait(for: .writable, deadline: deadline)
            default:
                let verify = SSL_get_verify_result(ssl)
                if verify != X509_V_OK {
                    throw .failed("TLS: the server's certificate was refused: \(String(cString: X509_verify_cert_error_string(verify)))")
                }
                throw .failed("TLS handshake: \(RedisTLSContext.lastError())")
            }
        }
    }

    /// Writes what the socket takes now from `bytes` (not empty).
    package func write(_ bytes: UnsafeRawBufferPointer) -> IO {
        guard descriptor >= 0 else { return .failed("the socket was closed") }
        let chunk = min(bytes.count, 1 << 30)
        if let ssl {
            // OpenSSL's error queue is per thread and must be empty before the call; the answer
            // is read on the same thread right after it.
            ERR_clear_error()
            let written = SSL_write(ssl, bytes.baseAddress, Int32(chunk))
            return written > 0 ? .moved(Int(written)) : tlsOutcome(written)
        }
        while true {
            let written = send(descriptor, bytes.baseAddress, chunk, Int32(MSG_NOSIGNAL))
            if written > 0 { return .moved(written) }
            switch errno {
            case EINTR: continue
            case EAGAIN, EWOULDBLOCK: return .blocked(.writable)
            case EPIPE, ECONNRESET: return .closed
            default: return .failed(Self.errorText())
            }
        }
    }

    /// Reads what is there now into `buffer`. With TLS this includes bytes OpenSSL decrypted
    /// and kept (a record read whole, handed out in part), which no readiness wait would report:
    /// wait only after a read said `.blocked`, never after one that moved bytes.
    package func read(into buffer: UnsafeMutableRawBufferPointer) -> IO {
        guard descriptor >= 0 else { return .failed("the socket was closed") }
        if let ssl {
            ERR_clear_error()
            let count = SSL_read(ssl, buffer.baseAddress, Int32(min(buffer.count, Int(Int32.max))))
            return count > 0 ? .moved(Int(count)) : tlsOutcome(count)
        }
        while true {
            let count = recv(descriptor, buffer.baseAddress, buffer.count, 0)
            if count > 0 { return .moved(count) }
            if count == 0 { return .closed }
            switch errno {
            case EINTR: continue
            case EAGAIN, EWOULDBLOCK: return .blocked(.readable)
            case ECONNRESET: return .closed
            default: return .failed(Self.errorText())
            }
        }
    }

    /// What an `SSL_read` or `SSL_write` that moved nothing means. OpenSSL retries records that
    /// carry no data itself (`SSL_MODE_AUTO_RETRY`, its default) until the socket has nothing
    /// more, so wanting to read means the kernel had nothing left.
    private func tlsOutcome(_ result: Int32) -> IO {
        guard let ssl else { return .failed("TLS: the session is gone") }
        switch SSL_get_error(ssl, result) {
        case SSL_ERROR_WANT_READ: return .blocked(.readable)
        case SSL_ERROR_WANT_WRITE: return .blocked(.writable)
        case SSL_ERROR_ZERO_RETURN: return .closed
        case SSL_ERROR_SYSCALL:
            if errno == 0 || errno == EPIPE || errno == ECONNRESET { return .closed }
            return .failed(Self.errorText())
        default: return .failed("TLS: \(RedisTLSContext.lastError())")
        }
    }

    /// Waits in `poll` until the socket is ready as `need` says, at most until `deadline`.
    /// Blocking: only where a thread may wait (connecting, and calls when the reactor is gone).
    package func wait(for need: Need, deadline: ContinuousClock.Instant) throws(Failure) {
        let events = need == .readable ? Int16(POLLIN) : Int16(POLLOUT)
        while true {
            let remaining = deadline - .now
            guard remaining > .zero else { throw .timedOut }
            let (seconds, attoseconds) = remaining.components
            let milliseconds = Int32(clamping: seconds * 1000 + attoseconds / 1_000_000_000_000_000 + 1)
            var entry = pollfd(fd: descriptor, events: events, revents: 0)
            let ready = poll(&entry, 1, milliseconds)
            if ready > 0 {
                if entry.revents & Int16(POLLNVAL) != 0 { throw .failed("the socket was closed") }
                return
            }
            if ready == 0 { continue }
            if errno != EINTR { throw .failed("poll(): \(Self.errorText())") }
        }
    }

    /// Closes the connection (a TLS close_notify is sent when it would not block). A socket
    /// added to a reactor is removed from it first: its number may be reused at once.
    package func close() {
        if let ssl {
            SSL_shutdown(ssl)
            SSL_free(ssl)
            self.ssl = nil
        }
        if descriptor >= 0 {
            Glibc.close(descriptor)
            descriptor = -1
        }
    }

    private static func isIPAddress(_ host: String) -> Bool {
        var buffer = [UInt8](repeating: 0, count: 16)
        return inet_pton(AF_INET, host, &buffer) == 1 || inet_pton(AF_INET6, host, &buffer) == 1
    }

    private static func errorText() -> String { String(cString: strerror(errno)) }
}

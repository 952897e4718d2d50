#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import COpenSSL

/// A TCP connection to Redis, plain or TLS (OpenSSL), non-blocking with every wait bounded by a
/// deadline. Used by one thread at a time (the connection's holder); never on Swift's
/// cooperative pool, since connecting resolves names and every call may wait in `poll`.
package final class RedisSocket {
    /// Why an I/O call failed; the connection turns it into a `RedisError` naming the command.
    package enum Failure: Error {
        case timedOut
        case closed
        case failed(String)
    }

    private var descriptor: Int32
    private var ssl: OpaquePointer?

    private init(descriptor: Int32) {
        self.descriptor = descriptor
    }

    deinit {
        close()
    }

    /// Connects (and, with `tls`, shakes hands) before `deadline`.
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
            try socket.wait(for: Int16(POLLOUT), deadline: deadline)
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
            case SSL_ERROR_WANT_READ: try wait(for: Int16(POLLIN), deadline: deadline)
            case SSL_ERROR_WANT_WRITE: try wait(for: Int16(POLLOUT), deadline: deadline)
            default:
                let verify = SSL_get_verify_result(ssl)
                if verify != X509_V_OK {
                    throw .failed("TLS: the server's certificate was refused: \(String(cString: X509_verify_cert_error_string(verify)))")
                }
                throw .failed("TLS handshake: \(RedisTLSContext.lastError())")
            }
        }
    }

    /// One `SSL_write` or `send` of what is left from `offset`: bytes written, or ≤ 0.
    private func sendSome(_ bytes: [UInt8], from offset: Int) -> Int {
        bytes.withUnsafeBytes { buffer in
            let start = buffer.baseAddress! + offset
            let chunk = min(bytes.count - offset, 1 << 30)
            if let ssl { return Int(SSL_write(ssl, start, Int32(chunk))) }
            return send(descriptor, start, chunk, Int32(MSG_NOSIGNAL))
        }
    }

    /// One `SSL_read` or `recv` (`flags` for a plain socket): bytes read, or ≤ 0.
    private func receiveSome(into buffer: UnsafeMutableRawBufferPointer, flags: Int32) -> Int {
        if let ssl {
            ERR_clear_error()
            return Int(SSL_read(ssl, buffer.baseAddress, Int32(min(buffer.count, Int(Int32.max)))))
        }
        return recv(descriptor, buffer.baseAddress, buffer.count, flags)
    }

    /// Writes every byte before `deadline`.
    package func write(_ bytes: [UInt8], deadline: ContinuousClock.Instant) throws(Failure) {
        var offset = 0
        while offset < bytes.count {
            let written = sendSome(bytes, from: offset)
            if written > 0 {
                offset += written
                continue
            }
            try waitAfter(result: written, wanting: Int16(POLLOUT), deadline: deadline)
        }
    }

    /// Writes what the socket takes now, never waiting; the count written, nil on an error (or
    /// when TLS needs to read first): the caller then writes with `write`, which reports it.
    package func writeWithoutWaiting(_ bytes: [UInt8]) -> Int? {
        var offset = 0
        while offset < bytes.count {
            let written = sendSome(bytes, from: offset)
            guard written > 0 else {
                if let ssl {
                    return SSL_get_error(ssl, Int32(written)) == SSL_ERROR_WANT_WRITE ? offset : (offset == 0 ? nil : offset)
                }
                return errno == EAGAIN || errno == EWOULDBLOCK ? offset : (offset == 0 ? nil : offset)
            }
            offset += written
        }
        return offset
    }

    /// Reads what is there without waiting: nil when nothing is, 0 when the server closed.
    package func readWithoutWaiting(into buffer: UnsafeMutableRawBufferPointer) throws(Failure) -> Int? {
        while true {
            let count = receiveSome(into: buffer, flags: Int32(MSG_DONTWAIT))
            if count > 0 { return count }
            if count == 0 && ssl == nil { return 0 }
            if let ssl {
                switch SSL_get_error(ssl, Int32(count)) {
                case SSL_ERROR_WANT_READ, SSL_ERROR_WANT_WRITE: return nil
                case SSL_ERROR_ZERO_RETURN: return 0
                case SSL_ERROR_SYSCALL where errno == 0: return 0
                case SSL_ERROR_SYSCALL: throw .failed(Self.errorText())
                default: throw .failed("TLS: \(RedisTLSContext.lastError())")
                }
            }
            switch errno {
            case EAGAIN, EWOULDBLOCK: return nil
            case EINTR: continue
            case ECONNRESET: return 0
            default: throw .failed(Self.errorText())
            }
        }
    }

    /// Reads what is there (at least one byte) before `deadline`; 0 when the server closed.
    package func read(into buffer: UnsafeMutableRawBufferPointer, deadline: ContinuousClock.Instant) throws(Failure) -> Int {
        while true {
            let count = receiveSome(into: buffer, flags: 0)
            if count > 0 { return count }
            if count == 0 && ssl == nil { return 0 }
            if let ssl {
                let error = SSL_get_error(ssl, Int32(count))
                if error == SSL_ERROR_ZERO_RETURN || (error == SSL_ERROR_SYSCALL && errno == 0) { return 0 }
            }
            try waitAfter(result: count, wanting: Int16(POLLIN), deadline: deadline)
        }
    }

    /// After a call that moved no bytes: waits for the socket when it would block (for `events`
    /// on a plain socket; TLS says which way it needs), else throws.
    private func waitAfter(result: Int, wanting events: Int16, deadline: ContinuousClock.Instant) throws(Failure) {
        if let ssl {
            switch SSL_get_error(ssl, Int32(result)) {
            case SSL_ERROR_WANT_READ: try wait(for: Int16(POLLIN), deadline: deadline)
            case SSL_ERROR_WANT_WRITE: try wait(for: Int16(POLLOUT), deadline: deadline)
            case SSL_ERROR_ZERO_RETURN: throw .closed
            case SSL_ERROR_SYSCALL:
                if errno == EPIPE || errno == ECONNRESET || errno == 0 { throw .closed }
                throw .failed(Self.errorText())
            default: throw .failed("TLS: \(RedisTLSContext.lastError())")
            }
            return
        }
        switch errno {
        case EAGAIN, EWOULDBLOCK: break
        case EINTR: return
        case EPIPE, ECONNRESET: throw .closed
        default: throw .failed(Self.errorText())
        }
        try wait(for: events, deadline: deadline)
    }

    private func wait(for events: Int16, deadline: ContinuousClock.Instant) throws(Failure) {
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

    /// Closes the connection (a TLS close_notify is sent when it would not block).
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

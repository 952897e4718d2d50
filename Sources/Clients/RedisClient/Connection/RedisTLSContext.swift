import COpenSSL

/// The OpenSSL client context every TLS connection of a client is made from: protocol floor,
/// trusted CAs and whether the server's certificate is checked. Immutable once made.
package final class RedisTLSContext: @unchecked Sendable {
    let context: OpaquePointer
    let verifies: Bool

    package init(configuration: RedisConfiguration) throws(RedisError) {
        guard let context = SSL_CTX_new(TLS_client_method()) else {
            throw .tls(configuration.server, "OpenSSL could not make a TLS context: \(Self.lastError())")
        }
        self.context = context
        self.verifies = !configuration.insecureTLS
        // TLS 1.2 at least (SSL_CTX_set_min_proto_version is a macro over SSL_CTX_ctrl).
        SSL_CTX_ctrl(context, SSL_CTRL_SET_MIN_PROTO_VERSION, Int(TLS1_2_VERSION), nil)
        // A write may be finished later from a copy of what is left (another buffer, another
        // thread): partial writes report their count, and the buffer may move between tries.
        // Records without data (session tickets, key updates) are handled inside SSL_read until
        // data comes or the socket has nothing more (OpenSSL's default, stated here because the
        // client relies on it): a read that wants more has left nothing unread in the kernel, so
        // the reactor's next edge is certain to come.
        SSL_CTX_ctrl(
            context, SSL_CTRL_MODE,
            Int(SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_AUTO_RETRY), nil)
        if configuration.insecureTLS {
            SSL_CTX_set_verify(context, SSL_VERIFY_NONE, nil)
        } else {
            SSL_CTX_set_verify(context, SSL_VERIFY_PEER, nil)
            if let caFile = configuration.caFile {
                guard SSL_CTX_load_verify_locations(context, caFile, nil) == 1 else {
                    throw .tls(configuration.server, "REDIS_CA_FILE \(caFile) could not be read as PEM certificates: \(Self.lastError())")
                }
            } else {
                guard SSL_CTX_set_default_verify_paths(context) == 1 else {
                    throw .tls(configuration.server, "the system's CA certificates could not be loaded: \(Self.lastError())")
                }
            }
        }
    }

    deinit {
        SSL_CTX_free(context)
    }

    /// The oldest error on OpenSSL's queue for this thread, as text (the queue is cleared).
    static func lastError() -> String {
        let code = ERR_get_error()
        ERR_clear_error()
        guard code != 0 else { return "no detail from OpenSSL" }
        var buffer = [CChar](repeating: 0, count: 256)
        ERR_error_string_n(code, &buffer, buffer.count)
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

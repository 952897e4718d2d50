import CHiredis

/// Replies parsed from the bytes a connection reads, by hiredis's reply reader. Not thread-safe:
/// one per connection, used by whoever holds the connection.
package final class RESPReader {
    private let reader: UnsafeMutablePointer<redisReader>
    /// Bytes fed since the last complete reply: the size of the reply being read so far.
    private(set) package var pendingBytes = 0

    package init() {
        guard let reader = redisReaderCreate() else { fatalError("hiredis could not allocate a reply reader (out of memory)") }
        // hiredis frees its buffer whenever it empties and holds more than this; at its default
        // (16 kB) every pipelined read would free and grow it again. A larger reply's buffer is
        // still given back.
        reader.pointee.maxbuf = 256 << 10
        self.reader = reader
    }

    deinit {
        redisReaderFree(reader)
    }

    /// Adds bytes read from the socket.
    package func feed(_ bytes: UnsafeRawBufferPointer) throws(ReaderFailure) {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        if redisReaderFeed(reader, base.assumingMemoryBound(to: CChar.self), bytes.count) != REDIS_OK {
            throw ReaderFailure(message: errorText())
        }
        pendingBytes += bytes.count
    }

    /// The next complete reply, or nil until more bytes arrive.
    package func next() throws(ReaderFailure) -> RedisValue? {
        var raw: UnsafeMutableRawPointer? = nil
        guard redisReaderGetReply(reader, &raw) == REDIS_OK else { throw ReaderFailure(message: errorText()) }
        guard let raw else { return nil }
        defer { freeReplyObject(raw) }
        // What is left of the buffer belongs to the following replies.
        pendingBytes = Int(reader.pointee.len) - Int(reader.pointee.pos)
        return Self.value(raw.assumingMemoryBound(to: redisReply.self))
    }

    private func errorText() -> String {
        withUnsafeBytes(of: reader.pointee.errstr) { bytes in
            String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
        }
    }

    private static func value(_ reply: UnsafeMutablePointer<redisReply>) -> RedisValue {
        let reply = reply.pointee
        switch reply.type {
        case REDIS_REPLY_STRING:
            return .bulk(bytes(reply))
        case REDIS_REPLY_STATUS:
            return .status(String(decoding: bytes(reply), as: UTF8.self))
        case REDIS_REPLY_ERROR:
            return .error(String(decoding: bytes(reply), as: UTF8.self))
        case REDIS_REPLY_INTEGER:
            return .integer(Int64(reply.integer))
        case REDIS_REPLY_ARRAY:
            var elements: [RedisValue] = []
            elements.reserveCapacity(Int(reply.elements))
            for index in 0..<Int(reply.elements) {
                elements.append(reply.element[index].map(value) ?? .null)
            }
            return .array(elements)
        default:
            return .null
        }
    }

    private static func bytes(_ reply: redisReply) -> [UInt8] {
        guard let string = reply.str, reply.len > 0 else { return [] }
        return string.withMemoryRebound(to: UInt8.self, capacity: Int(reply.len)) {
            Array(UnsafeBufferPointer(start: $0, count: Int(reply.len)))
        }
    }
}

/// The reader met bytes that are not RESP.
package struct ReaderFailure: Error {
    package let message: String
}

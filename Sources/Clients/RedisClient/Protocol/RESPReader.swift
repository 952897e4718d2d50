import CHiredis

/// Replies parsed from the bytes a connection reads, by hiredis's reply reader. hiredis builds
/// the values through our object functions, straight into `RedisValue`s (not its own
/// `redisReply` objects, which would cost two allocations, a copy and two frees per reply).
/// Not thread-safe: one per connection, used by whoever holds the connection.
package final class RESPReader {
    private let reader: UnsafeMutablePointer<redisReader>
    private let builder = ReplyBuilder()
    /// Bytes fed since the last complete reply: the size of the reply being read so far.
    private(set) package var pendingBytes = 0
    /// What the reply being read costs in memory once parsed, as far as it has come: its bytes,
    /// plus `elementCost` for every value built (a 4-byte `:1\r\n` becomes a value in an array,
    /// several times its size; counting wire bytes alone let an endless array grow to gigabytes
    /// within the byte limit).
    package var pendingCost: Int { pendingBytes + builder.built * Self.elementCost }
    /// Bytes a parsed value costs beyond its wire bytes, for `pendingCost` (a `RedisValue` in an
    /// array and its share of allocations; an upper estimate).
    package static let elementCost = 64

    package init() {
        guard let reader = redisReaderCreateWithFunctions(ReplyBuilder.functions) else {
            fatalError("hiredis could not allocate a reply reader (out of memory)")
        }
        // hiredis frees its buffer whenever it empties and holds more than this; at its default
        // (16 kB) every pipelined read would free and grow it again. A larger reply's buffer is
        // still given back.
        reader.pointee.maxbuf = 256 << 10
        reader.pointee.privdata = Unmanaged.passUnretained(builder).toOpaque()
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
        var token: UnsafeMutableRawPointer? = nil
        guard redisReaderGetReply(reader, &token) == REDIS_OK else {
            builder.reset()
            throw ReaderFailure(message: errorText())
        }
        guard token != nil, let reply = builder.take() else { return nil }
        builder.built = 0
        // What is left of the buffer belongs to the following replies.
        pendingBytes = Int(reader.pointee.len) - Int(reader.pointee.pos)
        return reply
    }

    private func errorText() -> String {
        withUnsafeBytes(of: reader.pointee.errstr) { bytes in
            String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
        }
    }
}

/// Builds replies as hiredis walks them. RESP is read depth first, in order, so a stack of the
/// arrays being filled is all it takes: a value goes into the innermost open array, and an array
/// that has all its elements goes into the one around it, or is the finished reply.
private final class ReplyBuilder {
    private var open: [(elements: [RedisValue], expected: Int)] = []
    private var finished: RedisValue?
    /// Values built for the reply under way (for `RESPReader.pendingCost`).
    var built = 0

    func take() -> RedisValue? {
        defer { finished = nil }
        return finished
    }

    func reset() {
        open = []
        finished = nil
        built = 0
    }

    func attach(_ value: RedisValue) {
        built += 1
        var value = value
        while true {
            guard !open.isEmpty else {
                finished = value
                return
            }
            open[open.count - 1].elements.append(value)
            guard open[open.count - 1].elements.count == open[open.count - 1].expected else { return }
            value = .array(open.removeLast().elements)
        }
    }

    /// Elements reserved up front for an array, whatever count the server announced.
    static let reservedElements = 1024

    func beginArray(_ count: Int) {
        if count <= 0 {
            attach(.array([]))
            return
        }
        // The count comes from the wire: a hostile or broken server can announce 2^31 elements in
        // 13 bytes. Reserve only what a modest reply needs; a real array grows as its elements
        // arrive, and the connection's reply limit bounds how far (REDIS_MAX_REPLY_BYTES).
        var elements: [RedisValue] = []
        elements.reserveCapacity(min(count, Self.reservedElements))
        open.append((elements, count))
    }

    /// hiredis only checks that what we return is not NULL; the values live in the builder.
    private static var token: UnsafeMutableRawPointer { UnsafeMutableRawPointer(bitPattern: 1)! }

    private static func builder(_ task: UnsafePointer<redisReadTask>?) -> ReplyBuilder {
        Unmanaged<ReplyBuilder>.fromOpaque(task!.pointee.privdata!).takeUnretainedValue()
    }

    /// Written once, then only read by hiredis.
    nonisolated(unsafe) static let functions: UnsafeMutablePointer<redisReplyObjectFunctions> = {
        let functions = UnsafeMutablePointer<redisReplyObjectFunctions>.allocate(capacity: 1)
        functions.initialize(
            to: redisReplyObjectFunctions(
                createString: { task, string, length in
                    let bytes = length == 0 ? [] : string!.withMemoryRebound(to: UInt8.self, capacity: length) {
                        Array(UnsafeBufferPointer(start: $0, count: length))
                    }
                    let value: RedisValue
                    switch task!.pointee.type {
                    case REDIS_REPLY_STATUS: value = .status(String(decoding: bytes, as: UTF8.self))
                    case REDIS_REPLY_ERROR: value = .error(String(decoding: bytes, as: UTF8.self))
                    default: value = .bulk(bytes)
                    }
                    builder(task).attach(value)
                    return token
                },
                createArray: { task, count in
                    builder(task).beginArray(Int(count))
                    return token
                },
                createInteger: { task, integer in
                    builder(task).attach(.integer(Int64(integer)))
                    return token
                },
                createNil: { task in
                    builder(task).attach(.null)
                    return token
                },
                freeObject: { _ in }))
        return functions
    }()
}

/// The reader met bytes that are not RESP.
package struct ReaderFailure: Error {
    package let message: String
}

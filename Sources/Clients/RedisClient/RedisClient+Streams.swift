/// Redis Streams: a job queue with consumer groups (docs/redis.md, "Streams"). Every command takes
/// one stream key. Each throws `RedisError`; a reply of the wrong shape is `unexpectedReply`,
/// naming the command. Blocking reads are not here: `XREADGROUP … BLOCK` holds its connection
/// for as long as it blocks, so it runs on a connection of its own (`RedisBlockingConnection`),
/// never on the pool every other call shares.
extension RedisClient {
    /// `XADD key [MAXLEN ~ n] id field value ...`: the new entry's id. `maxLength` trims the
    /// oldest entries as it adds, approximately (`~`: whole nodes only, far cheaper) unless
    /// `exactTrim`.
    @discardableResult
    public func xadd(
        _ key: String, id: String = "*", fields: [(name: String, value: RedisArgument)], maxLength: Int? = nil, exactTrim: Bool = false
    ) async throws -> String {
        var command: RedisCommand = ["XADD", RedisArgument(key)]
        if let maxLength { command += ["MAXLEN", RedisArgument(exactTrim ? "=" : "~"), RedisArgument(maxLength)] }
        command.append(RedisArgument(id))
        for field in fields { command += [RedisArgument(field.name), field.value] }
        let reply = try await send(command)
        guard let added = RedisStreams.id(reply) else { throw RedisError.unexpectedReply(configuration.server, "XADD", reply) }
        return added
    }

    /// `XGROUP CREATE key group id [MKSTREAM]`: true when made, false when the group was there
    /// already (`BUSYGROUP`, which every worker meets but the first: not a failure). `id` is where
    /// the group starts reading: `$` for entries added from now on, `0` for the whole stream.
    @discardableResult
    public func xgroupCreate(_ key: String, group: String, id: String = "$", makeStream: Bool = true) async throws -> Bool {
        var command: RedisCommand = ["XGROUP", "CREATE", RedisArgument(key), RedisArgument(group), RedisArgument(id)]
        if makeStream { command.append("MKSTREAM") }
        let reply: RedisValue
        do {
            reply = try await send(command)
        } catch let error as RedisError where error.isServerError && error.reason.hasPrefix("BUSYGROUP") {
            return false
        }
        guard case .status = reply else { throw RedisError.unexpectedReply(configuration.server, "XGROUP", reply) }
        return true
    }

    /// `XREADGROUP GROUP group consumer [COUNT n] STREAMS key id`, without waiting: entries handed
    /// to `consumer` (each now pending for it until `xack`), empty when there are none. `>` reads
    /// entries no consumer has had; `0` re-reads this consumer's pending ones (after a restart),
    /// where an entry deleted meanwhile comes back with no fields (`isDeleted`). To wait for
    /// entries, use `RedisBlockingConnection.xreadgroup(_:group:consumer:count:block:after:)`.
    public func xreadgroup(
        _ key: String, group: String, consumer: String, count: Int? = nil, after id: String = ">"
    ) async throws -> [RedisStreamEntry] {
        let reply = try await send(RedisStreams.readGroup(key, group: group, consumer: consumer, count: count, block: nil, after: id))
        guard let entries = RedisStreamEntry.readReply(reply, key: key) else {
            throw RedisError.unexpectedReply(configuration.server, "XREADGROUP", reply)
        }
        return entries
    }

    /// `XACK key group id ...`: how many of the entries were pending (and are no longer).
    @discardableResult
    public func xack(_ key: String, group: String, ids: [String]) async throws -> Int {
        try await streamCount(["XACK", RedisArgument(key), RedisArgument(group)] + ids.map { RedisArgument($0) })
    }

    /// `XAUTOCLAIM key group consumer min-idle start COUNT n`: entries pending longer than
    /// `minIdle` (their consumer presumably dead) move to `consumer`, their delivery count
    /// incremented. Redis scans at most 10 × `count` pending entries per call: go on from `next`
    /// until it is `0-0`. Redis 7 also drops entries deleted from the stream from the pending list
    /// and names them (`deletedIDs`); 6.2 answers two elements and leaves them out.
    public func xautoclaim(
        _ key: String, group: String, consumer: String, minIdle: Duration, start: String = "0-0", count: Int = 100
    ) async throws -> RedisAutoClaim {
        let reply = try await send([
            "XAUTOCLAIM", RedisArgument(key), RedisArgument(group), RedisArgument(consumer),
            RedisArgument(RedisStreams.milliseconds(minIdle)), RedisArgument(start), "COUNT", RedisArgument(count),
        ])
        guard let claimed = RedisAutoClaim(reply: reply) else { throw RedisError.unexpectedReply(configuration.server, "XAUTOCLAIM", reply) }
        return claimed
    }

    /// `XCLAIM key group consumer min-idle id ... [IDLE ms] [RETRYCOUNT n] [FORCE]`: the entries
    /// (of `ids`, pending longer than `minIdle`) now pending for `consumer`, their delivery count
    /// incremented. Entries deleted from the stream are left out.
    public func xclaim(
        _ key: String, group: String, consumer: String, minIdle: Duration, ids: [String], idle: Duration? = nil,
        retryCount: Int? = nil, force: Bool = false
    ) async throws -> [RedisStreamEntry] {
        let command = RedisStreams.claim(
            key, group: group, consumer: consumer, minIdle: minIdle, ids: ids, idle: idle, retryCount: retryCount, force: force, justID: false)
        let reply = try await send(command)
        guard let entries = RedisStreamEntry.list(reply, skippingNil: true) else {
            throw RedisError.unexpectedReply(configuration.server, "XCLAIM", reply)
        }
        return entries
    }

    /// `XCLAIM … JUSTID`: the ids claimed, their delivery count left as it was. With `minIdle`
    /// zero and `idle` zero this renews a lease: the entry's idle time starts again, so
    /// `xautoclaim` leaves it alone. Mind that it takes the entry from whichever consumer holds
    /// it: a worker that lost its entry to `xautoclaim` must not take it back this way (check the
    /// owner first, in one script, if that can happen).
    @discardableResult
    public func xclaimIDs(
        _ key: String, group: String, consumer: String, minIdle: Duration, ids: [String], idle: Duration? = nil,
        retryCount: Int? = nil, force: Bool = false
    ) async throws -> [String] {
        let command = RedisStreams.claim(
            key, group: group, consumer: consumer, minIdle: minIdle, ids: ids, idle: idle, retryCount: retryCount, force: force, justID: true)
        let reply = try await send(command)
        guard let claimed = RedisStreams.ids(reply) else { throw RedisError.unexpectedReply(configuration.server, "XCLAIM", reply) }
        return claimed
    }

    /// `XPENDING key group`: how many entries are pending, the lowest and highest of their ids,
    /// and how many each consumer holds.
    public func xpending(_ key: String, group: String) async throws -> RedisPendingSummary {
        let reply = try await send(["XPENDING", RedisArgument(key), RedisArgument(group)])
        guard let summary = RedisPendingSummary(reply: reply) else { throw RedisError.unexpectedReply(configuration.server, "XPENDING", reply) }
        return summary
    }

    /// `XPENDING key group [IDLE ms] start end count [consumer]`: up to `count` pending entries
    /// from `start` to `end`, each with its consumer, idle time and delivery count; only those
    /// idle at least `minIdle`, and only `consumer`'s, when given.
    public func xpending(
        _ key: String, group: String, start: String = "-", end: String = "+", count: Int, consumer: String? = nil, minIdle: Duration? = nil
    ) async throws -> [RedisPendingEntry] {
        var command: RedisCommand = ["XPENDING", RedisArgument(key), RedisArgument(group)]
        if let minIdle { command += ["IDLE", RedisArgument(RedisStreams.milliseconds(minIdle))] }
        command += [RedisArgument(start), RedisArgument(end), RedisArgument(count)]
        if let consumer { command.append(RedisArgument(consumer)) }
        let reply = try await send(command)
        guard case .array(let items) = reply else { throw RedisError.unexpectedReply(configuration.server, "XPENDING", reply) }
        var entries: [RedisPendingEntry] = []
        entries.reserveCapacity(items.count)
        for item in items {
            guard let entry = RedisPendingEntry(reply: item) else { throw RedisError.unexpectedReply(configuration.server, "XPENDING", reply) }
            entries.append(entry)
        }
        return entries
    }

    /// `XLEN`: the stream's entries (0 for a missing key).
    public func xlen(_ key: String) async throws -> Int {
        try await streamCount(["XLEN", RedisArgument(key)])
    }

    /// `XRANGE key start end [COUNT n]`: entries from `start` to `end` (`-` and `+`: all), oldest
    /// first.
    public func xrange(_ key: String, start: String = "-", end: String = "+", count: Int? = nil) async throws -> [RedisStreamEntry] {
        var command: RedisCommand = ["XRANGE", RedisArgument(key), RedisArgument(start), RedisArgument(end)]
        if let count { command += ["COUNT", RedisArgument(count)] }
        let reply = try await send(command)
        guard let entries = RedisStreamEntry.list(reply, skippingNil: false) else {
            throw RedisError.unexpectedReply(configuration.server, "XRANGE", reply)
        }
        return entries
    }

    /// `XDEL key id ...`: how many entries were deleted. A deleted entry stays pending where it
    /// was until acknowledged or re-claimed.
    @discardableResult
    public func xdel(_ key: String, ids: [String]) async throws -> Int {
        try await streamCount(["XDEL", RedisArgument(key)] + ids.map { RedisArgument($0) })
    }

    private func streamCount(_ command: RedisCommand) async throws -> Int {
        let reply = try await send(command)
        guard case .integer(let value) = reply else { throw RedisError.unexpectedReply(configuration.server, command.commandName, reply) }
        return Int(value)
    }
}

/// One entry of a stream: its id and its fields, in the order `XADD` gave them.
public struct RedisStreamEntry: Sendable, Equatable {
    public let id: String
    /// Names may repeat, as Redis allows. Empty for an entry deleted from the stream while it was
    /// pending (a consumer re-reading its pending entries sees it so): acknowledge it.
    public let fields: [RedisStreamField]

    public init(id: String, fields: [RedisStreamField]) {
        self.id = id
        self.fields = fields
    }

    public var isDeleted: Bool { fields.isEmpty }

    /// The first field named `name`.
    public subscript(name: String) -> [UInt8]? {
        fields.first { $0.name == name }?.value
    }

    /// An entry as XRANGE, XREADGROUP, XCLAIM and XAUTOCLAIM answer it: `[id, [field, value, ...]]`,
    /// or `[id, nil]` for one deleted while pending. Nil for any other shape.
    package init?(reply: RedisValue) {
        guard case .array(let pair) = reply, pair.count == 2, let id = RedisStreams.id(pair[0]) else { return nil }
        switch pair[1] {
        case .null:
            self.init(id: id, fields: [])
        case .array(let flat) where !flat.isEmpty && flat.count % 2 == 0:
            var fields: [RedisStreamField] = []
            fields.reserveCapacity(flat.count / 2)
            for index in stride(from: 0, to: flat.count, by: 2) {
                guard case .bulk(let name) = flat[index], case .bulk(let value) = flat[index + 1] else { return nil }
                fields.append(RedisStreamField(name: String(decoding: name, as: UTF8.self), value: value))
            }
            self.init(id: id, fields: fields)
        default:
            return nil
        }
    }

    /// A list of entries. Redis 6.2's XCLAIM and XAUTOCLAIM answer nil in place of an entry
    /// deleted from the stream; with `skippingNil` those are left out, as Redis 7 leaves them.
    package static func list(_ reply: RedisValue, skippingNil: Bool) -> [RedisStreamEntry]? {
        guard case .array(let items) = reply else { return nil }
        var entries: [RedisStreamEntry] = []
        entries.reserveCapacity(items.count)
        for item in items {
            if skippingNil && item == .null { continue }
            guard let entry = RedisStreamEntry(reply: item) else { return nil }
            entries.append(entry)
        }
        return entries
    }

    /// XREADGROUP's reply for one stream: `[[key, entries]]`, or nil when nothing came (empty).
    package static func readReply(_ reply: RedisValue, key: String) -> [RedisStreamEntry]? {
        switch reply {
        case .null:
            return []
        case .array(let streams) where streams.count == 1:
            guard case .array(let pair) = streams[0], pair.count == 2, pair[0] == .bulk(Array(key.utf8)) else { return nil }
            return list(pair[1], skippingNil: false)
        default:
            return nil
        }
    }
}

public struct RedisStreamField: Sendable, Equatable {
    public let name: String
    public let value: [UInt8]

    public init(name: String, value: [UInt8]) {
        self.name = name
        self.value = value
    }
}

/// What `XAUTOCLAIM` answers.
public struct RedisAutoClaim: Sendable, Equatable {
    /// Where the next call starts; `0-0` once the whole pending list was scanned.
    public let next: String
    /// The entries now pending for the caller.
    public let entries: [RedisStreamEntry]
    /// Entries that were pending but had been deleted from the stream, now dropped from the
    /// pending list (Redis 7; always empty from 6.2).
    public let deletedIDs: [String]

    public init(next: String, entries: [RedisStreamEntry], deletedIDs: [String] = []) {
        self.next = next
        self.entries = entries
        self.deletedIDs = deletedIDs
    }

    /// `[next, entries]` (6.2) or `[next, entries, deleted ids]` (7); nil for any other shape.
    package init?(reply: RedisValue) {
        guard case .array(let parts) = reply, parts.count == 2 || parts.count == 3, let next = RedisStreams.id(parts[0]),
            let entries = RedisStreamEntry.list(parts[1], skippingNil: true)
        else { return nil }
        self.next = next
        self.entries = entries
        if parts.count == 3 {
            guard let deleted = RedisStreams.ids(parts[2]) else { return nil }
            deletedIDs = deleted
        } else {
            deletedIDs = []
        }
    }
}

/// What `XPENDING key group` answers.
public struct RedisPendingSummary: Sendable, Equatable {
    public let count: Int
    /// The lowest and highest pending ids; nil when nothing is pending.
    public let smallestID: String?
    public let greatestID: String?
    /// How many entries each consumer holds (consumers holding none are not named).
    public let consumers: [String: Int]

    public init(count: Int, smallestID: String?, greatestID: String?, consumers: [String: Int]) {
        self.count = count
        self.smallestID = smallestID
        self.greatestID = greatestID
        self.consumers = consumers
    }

    /// `[count, smallest, greatest, [[consumer, "n"], ...]]`, the last three nil when nothing is pending.
    package init?(reply: RedisValue) {
        guard case .array(let parts) = reply, parts.count == 4, case .integer(let count) = parts[0] else { return nil }
        self.count = Int(count)
        switch (parts[1], parts[2]) {
        case (.null, .null):
            smallestID = nil
            greatestID = nil
        case (.bulk(let smallest), .bulk(let greatest)):
            smallestID = String(decoding: smallest, as: UTF8.self)
            greatestID = String(decoding: greatest, as: UTF8.self)
        default:
            return nil
        }
        var consumers: [String: Int] = [:]
        switch parts[3] {
        case .null:
            break
        case .array(let list):
            for item in list {
                // The count comes as a bulk string ("1"), not an integer.
                guard case .array(let pair) = item, pair.count == 2, case .bulk(let name) = pair[0] else { return nil }
                let held: Int?
                switch pair[1] {
                case .bulk(let digits): held = Int(String(decoding: digits, as: UTF8.self))
                case .integer(let value): held = Int(value)
                default: held = nil
                }
                guard let held else { return nil }
                consumers[String(decoding: name, as: UTF8.self)] = held
            }
        default:
            return nil
        }
        self.consumers = consumers
    }
}

/// One pending entry, as `XPENDING key group start end count` lists it.
public struct RedisPendingEntry: Sendable, Equatable {
    public let id: String
    public let consumer: String
    /// Since the entry was last delivered (or claimed, or its idle time set by `XCLAIM … IDLE`).
    public let idle: Duration
    /// How many times it was delivered: 1 for the first read; `XCLAIM` and `XAUTOCLAIM` add one
    /// unless `JUSTID`.
    public let deliveries: Int

    public init(id: String, consumer: String, idle: Duration, deliveries: Int) {
        self.id = id
        self.consumer = consumer
        self.idle = idle
        self.deliveries = deliveries
    }

    /// `[id, consumer, idle ms, deliveries]`; nil for any other shape.
    package init?(reply: RedisValue) {
        guard case .array(let parts) = reply, parts.count == 4, let id = RedisStreams.id(parts[0]), case .bulk(let consumer) = parts[1],
            case .integer(let idle) = parts[2], case .integer(let deliveries) = parts[3]
        else { return nil }
        self.id = id
        self.consumer = String(decoding: consumer, as: UTF8.self)
        self.idle = .milliseconds(idle)
        self.deliveries = Int(deliveries)
    }
}

/// The Streams commands' shared parts: built here and read here, so the pooled client and a
/// connection of its own (`RedisBlockingConnection`) send and read them alike.
package enum RedisStreams {
    /// `XREADGROUP GROUP group consumer [COUNT n] [BLOCK ms] STREAMS key id`.
    package static func readGroup(
        _ key: String, group: String, consumer: String, count: Int?, block: Duration?, after id: String
    ) -> RedisCommand {
        var command: RedisCommand = ["XREADGROUP", "GROUP", RedisArgument(group), RedisArgument(consumer)]
        if let count { command += ["COUNT", RedisArgument(count)] }
        // BLOCK 0 waits for ever, which no deadline could cover: at least a millisecond.
        if let block { command += ["BLOCK", RedisArgument(max(1, milliseconds(block)))] }
        command += ["STREAMS", RedisArgument(key), RedisArgument(id)]
        return command
    }

    static func claim(
        _ key: String, group: String, consumer: String, minIdle: Duration, ids: [String], idle: Duration?, retryCount: Int?, force: Bool,
        justID: Bool
    ) -> RedisCommand {
        var command: RedisCommand = [
            "XCLAIM", RedisArgument(key), RedisArgument(group), RedisArgument(consumer), RedisArgument(milliseconds(minIdle)),
        ]
        command += ids.map { RedisArgument($0) }
        if let idle { command += ["IDLE", RedisArgument(milliseconds(idle))] }
        if let retryCount { command += ["RETRYCOUNT", RedisArgument(retryCount)] }
        if force { command.append("FORCE") }
        if justID { command.append("JUSTID") }
        return command
    }

    /// Whole milliseconds, zero included (`IDLE 0`, a min-idle of 0: unlike an expiry, zero means
    /// something here).
    package static func milliseconds(_ duration: Duration) -> Int {
        let (seconds, attoseconds) = duration.components
        return max(0, Int(seconds) * 1000 + Int(attoseconds / 1_000_000_000_000_000))
    }

    /// A stream id (a bulk string); nil for anything else.
    static func id(_ reply: RedisValue) -> String? {
        guard case .bulk(let bytes) = reply else { return nil }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// A list of stream ids.
    static func ids(_ reply: RedisValue) -> [String]? {
        guard case .array(let items) = reply else { return nil }
        var list: [String] = []
        list.reserveCapacity(items.count)
        for item in items {
            guard let value = Self.id(item) else { return nil }
            list.append(value)
        }
        return list
    }
}

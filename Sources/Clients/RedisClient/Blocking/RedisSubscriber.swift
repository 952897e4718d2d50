/// A subscription to channels (`SUBSCRIBE`) and shard channels (`SSUBSCRIBE`) on a connection of
/// its own, made by `RedisConnector.subscriber(...)`, kept up until `close()` (or until neither
/// it nor its `events` are held): `events` delivers what the server publishes, and says when
/// something may have been missed.
///
/// Pub/sub forgets: a message published while the connection is down reaches nobody. So a
/// subscriber reconnects by itself (at once, then backing off to 2 s between tries) and
/// subscribes again, and tells its consumer: `.disconnected` when the connection is lost,
/// `.reconnected` once subscribed again. A waiter that sleeps until a message announces a result
/// re-checks the result itself on `.reconnected` (and on `.overflowed`), and checks it once after
/// `.subscribed` before it waits: a result published before the subscription is never announced.
///
/// Events wait in a bounded buffer for the consumer: when it falls `bufferLimit` events behind,
/// the oldest are dropped (the newest kept), and the next event it takes is
/// `.overflowed(dropped:)`, once for however many went. Silence is checked: a connection quiet
/// for `keepAlive` is sent a `PING`, and one that does not answer within `REDIS_TIMEOUT` is
/// replaced, as a dropped one is.
public final class RedisSubscriber: Sendable {
    public enum Event: Sendable {
        /// Every channel is subscribed, the first time: what is published from now on arrives.
        case subscribed
        case message(RedisPubSubMessage)
        /// The connection was lost (or could not be made): what is published until `.reconnected`
        /// is missed. Once per outage, however many tries it takes.
        case disconnected(RedisError)
        /// Subscribed again after `.disconnected`: messages may have been missed meanwhile.
        case reconnected
        /// The consumer fell behind: this many events before the next one were dropped.
        case overflowed(dropped: Int)
    }

    /// The events, in order, for one consumer. They end after `close()`, when the connector shuts
    /// down, or when the consuming task is cancelled. Holding them (or an iterator) keeps the
    /// subscription up as holding the subscriber does.
    public struct Events: AsyncSequence, Sendable {
        public typealias Element = Event
        public typealias Failure = Never
        let buffer: RedisSubscriberBuffer
        let reading: ReadingTask

        public func makeAsyncIterator() -> Iterator {
            Iterator(buffer: buffer, reading: reading)
        }

        public struct Iterator: AsyncIteratorProtocol {
            public typealias Element = Event
            public typealias Failure = Never
            let buffer: RedisSubscriberBuffer
            let reading: ReadingTask

            public mutating func next() async -> Event? {
                await buffer.next()
            }
        }
    }

    public let channels: [String]
    public let shardChannels: [String]
    public let events: Events
    private let buffer: RedisSubscriberBuffer
    private let reading: ReadingTask

    init(connector: RedisConnector, channels: [String], shardChannels: [String], bufferLimit: Int, keepAlive: Duration) {
        precondition(!channels.isEmpty || !shardChannels.isEmpty, "a subscriber needs a channel to subscribe to")
        // Each channel once: the server confirms a repeated one once, and the confirmations are counted.
        var seen = Set<String>()
        let channels = channels.filter { seen.insert($0).inserted }
        seen = []
        let shardChannels = shardChannels.filter { seen.insert($0).inserted }
        let buffer = RedisSubscriberBuffer(limit: bufferLimit)
        let listener = Listener(connector: connector, channels: channels, shardChannels: shardChannels, buffer: buffer, keepAlive: keepAlive)
        self.channels = channels
        self.shardChannels = shardChannels
        self.buffer = buffer
        let reading = ReadingTask(Task { await listener.run() })
        self.reading = reading
        events = Events(buffer: buffer, reading: reading)
    }

    /// Events dropped because the consumer fell behind, since the subscriber was made.
    public var droppedEvents: Int { buffer.dropped }

    /// Unsubscribes by closing the connection; `events` ends once the consumer has taken what
    /// was buffered.
    public func close() {
        reading.task.cancel()
    }

    /// The reading task, cancelled once neither the subscriber nor its events are held: the task
    /// holds what it reads with, never the subscriber.
    final class ReadingTask: Sendable {
        let task: Task<Void, Never>

        init(_ task: Task<Void, Never>) {
            self.task = task
        }

        deinit {
            task.cancel()
        }
    }
}

/// A message published on a channel (`PUBLISH`) or a shard channel (`SPUBLISH`).
public struct RedisPubSubMessage: Sendable, Equatable {
    public let channel: String
    public let payload: [UInt8]
    /// Published with `SPUBLISH` to a shard channel.
    public let isShard: Bool

    public init(channel: String, payload: [UInt8], isShard: Bool = false) {
        self.channel = channel
        self.payload = payload
        self.isShard = isShard
    }
}

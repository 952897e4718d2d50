import RedisClient
import Synchronization
import TestSupport
import WorkerRuntimeTesting

/// A bounded wait that never waits for what it abandons, and server readings, for the tests of
/// streams, blocking reads and subscriptions (polling waits are WorkerRuntimeTesting's `waitUntil`).
enum DedicatedTesting {
    /// Runs `operation`, failing with `TimeoutError` (and cancelling it) when it takes longer than
    /// `limit`: a hung read fails its test instead of hanging the run. Unlike `withTimeout`, whose
    /// task group waits for its children, an operation that ignores the cancellation (awaiting
    /// another task's value) is left behind, not waited for.
    static func within<T: Sendable>(
        _ limit: Duration, _ what: String, _ operation: @escaping @Sendable () async throws -> T
    ) async throws -> T {
        let work = Task { try await operation() }
        let first = FirstOf<Result<T, any Error>>()
        Task { first.offer(await work.result) }
        let timer = Task {
            try await Task.sleep(for: limit)
            work.cancel()
            first.offer(.failure(TimeoutError(what: what, timeout: limit)))
        }
        defer { timer.cancel() }
        return try await first.value().get()
    }

    static func client(_ server: RedisTestServer, _ change: (inout RedisConfiguration) -> Void = { _ in }) throws -> RedisClient {
        try RedisClient(configuration: configuration(server, change))
    }

    static func connector(_ server: RedisTestServer, _ change: (inout RedisConfiguration) -> Void = { _ in }) throws -> RedisConnector {
        try RedisConnector(configuration: configuration(server, change))
    }

    static func configuration(_ server: RedisTestServer, _ change: (inout RedisConfiguration) -> Void) throws -> RedisConfiguration {
        var configuration = try RedisConfiguration(url: server.url)
        configuration.caFile = server.tls?.caFile
        configuration.connectTimeout = .seconds(2)
        change(&configuration)
        return configuration
    }

    /// A number from `INFO section` (`blocked_clients` in `clients`), as the server counts it.
    static func info(_ redis: RedisClient, _ section: String, _ field: String) async throws -> Int? {
        guard let text = try await redis.send(["INFO", RedisArgument(section)]).string else { return nil }
        for line in text.split(whereSeparator: \.isNewline) where line.hasPrefix(field + ":") {
            return Int(line.dropFirst(field.count + 1))
        }
        return nil
    }

    /// The server's major version (`redis_version:7.0.15` is 7).
    static func majorVersion(_ redis: RedisClient) async throws -> Int {
        let text = try await redis.send(["INFO", "server"]).string ?? ""
        let line = text.split(whereSeparator: \.isNewline).first { $0.hasPrefix("redis_version:") } ?? ""
        return Int(line.dropFirst("redis_version:".count).prefix { $0 != "." }) ?? 0
    }
}

/// The first value offered, to whoever awaits it (before or after it came); later ones are ignored.
final class FirstOf<Value: Sendable>: Sendable {
    private enum State {
        case empty
        case waiting(CheckedContinuation<Value, Never>)
        case done(Value)
    }

    private let state = Mutex(State.empty)

    func offer(_ value: Value) {
        let waiter = state.withLock { state -> CheckedContinuation<Value, Never>? in
            switch state {
            case .empty:
                state = .done(value)
                return nil
            case .waiting(let continuation):
                state = .done(value)
                return continuation
            case .done:
                return nil
            }
        }
        waiter?.resume(returning: value)
    }

    /// One awaiter at most.
    func value() async -> Value {
        await withCheckedContinuation { continuation in
            let ready = state.withLock { state -> Value? in
                if case .done(let value) = state { return value }
                state = .waiting(continuation)
                return nil
            }
            if let ready { continuation.resume(returning: ready) }
        }
    }
}

/// Collects a subscriber's events as they come, for a test to wait on and look at.
final class EventLog: Sendable {
    private let storage: Storage
    private let reader: Task<Void, Never>

    private final class Storage: Sendable {
        let events = Mutex<[RedisSubscriber.Event]>([])
        let ended = Atomic<Bool>(false)
    }

    init(_ events: RedisSubscriber.Events) {
        let storage = Storage()
        self.storage = storage
        reader = Task {
            for await event in events { storage.events.withLock { $0.append(event) } }
            storage.ended.store(true, ordering: .releasing)
        }
    }

    deinit {
        reader.cancel()
    }

    var events: [RedisSubscriber.Event] { storage.events.withLock { $0 } }

    /// Each event's kind (`subscribed`, `message`, `disconnected`, `reconnected`, `overflowed`).
    var kinds: [String] { events.map(\.kind) }

    var messages: [RedisPubSubMessage] { events.compactMap(\.message) }

    /// The events ended (the subscriber closed, or its connector shut down).
    var ended: Bool { storage.ended.load(ordering: .acquiring) }

    func count(_ kind: String) -> Int { kinds.filter { $0 == kind }.count }
}

extension RedisSubscriber.Event {
    var kind: String {
        switch self {
        case .subscribed: "subscribed"
        case .message: "message"
        case .disconnected: "disconnected"
        case .reconnected: "reconnected"
        case .overflowed: "overflowed"
        }
    }

    var message: RedisPubSubMessage? {
        if case .message(let message) = self { return message }
        return nil
    }
}

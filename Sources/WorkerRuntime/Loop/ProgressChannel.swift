import WorkerJSON
import Synchronization

/// A job's progress posts, sent one at a time in order on the job's own channel and drained
/// before its final result, so a late progress post can never overwrite the result
/// (runpod-python#250).
final class ProgressChannel: Sendable {
    private let continuation: AsyncStream<JSONValue>.Continuation
    private let consumer: Task<Void, Never>

    init(deliver: @escaping @Sendable (ResultPayload) async -> Void) {
        let (stream, continuation) = AsyncStream<JSONValue>.makeStream()
        self.continuation = continuation
        consumer = Task {
            for await value in stream {
                guard let body = try? ResultPayload(ResultBody.forProgress(value)) else { continue }
                await deliver(body)
            }
        }
    }

    func send(_ value: JSONValue) {
        continuation.yield(value)
    }

    /// Waits until every update sent so far has been posted; later updates are dropped.
    func drain() async {
        continuation.finish()
        await consumer.value
    }

    /// Drops pending updates (the job was stopped: nothing more is posted for it).
    func cancel() {
        continuation.finish()
        consumer.cancel()
    }
}

/// Creates the channel (a task and a stream) only when a job first reports progress:
/// most jobs never do, and the loop's hot path should not pay for it. Once drained or cancelled
/// it is closed: a late update is dropped, never posted after the final result.
final class LazyProgressChannel: Sendable {
    private let state = Mutex<(channel: ProgressChannel?, closed: Bool)>((nil, false))
    private let make: @Sendable () -> ProgressChannel

    init(_ make: @escaping @Sendable () -> ProgressChannel) { self.make = make }

    func send(_ value: JSONValue) {
        state.withLock { state in
            guard !state.closed else { return }
            if state.channel == nil { state.channel = make() }
            state.channel!.send(value)
        }
    }

    func drain() async {
        let channel = state.withLock { state in
            state.closed = true
            return state.channel
        }
        await channel?.drain()
    }

    func cancel() {
        let channel = state.withLock { state in
            state.closed = true
            return state.channel
        }
        channel?.cancel()
    }
}

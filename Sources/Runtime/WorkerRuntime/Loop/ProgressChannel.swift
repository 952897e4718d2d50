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

import Synchronization
import WorkerJSON

/// Where a handler puts its output: one value with `respond(_:)`, or a stream of chunks with
/// `yield(_:)`, each delivered (and awaited) before the next is produced.
public final class JobOutputWriter: Sendable {
    package enum Outcome: Sendable, Equatable {
        /// Nothing was produced.
        case none
        case value(JSONValue)
        /// Streamed; `aggregate` holds the chunks when the runtime aggregates them.
        case stream(aggregate: [JSONValue]?)
        /// A chunk with a truthy `error` ended the stream.
        case streamError(JSONValue)
    }

    private struct State {
        var aggregate: Bool
        var streaming = false
        var value: JSONValue?
        var chunks: [JSONValue] = []
        var error: JSONValue?
        /// Made when the job first reports progress (most jobs never do); closed once drained or
        /// cancelled, after which an update is dropped, never posted after the final result.
        var progress: ProgressChannel?
        var progressClosed = false
    }

    private let state: Mutex<State>
    private let deliver: @Sendable (JSONValue) async throws -> Void
    private let deliverProgress: @Sendable (ResultPayload) async -> Void

    package init(
        aggregateChunks: Bool, deliver: @escaping @Sendable (JSONValue) async throws -> Void,
        progress: @escaping @Sendable (ResultPayload) async -> Void = { _ in }
    ) {
        self.state = Mutex(State(aggregate: aggregateChunks))
        self.deliver = deliver
        self.deliverProgress = progress
    }

    /// Queues a progress update on the job's own channel (`JobContext.progress`).
    package func progress(_ value: JSONValue) {
        let deliver = deliverProgress
        state.withLock { state in
            guard !state.progressClosed else { return }
            if state.progress == nil { state.progress = ProgressChannel(deliver: deliver) }
            state.progress!.send(value)
        }
    }

    /// Waits until every update sent so far is posted; later ones are dropped.
    func drainProgress() async {
        let channel = state.withLock { state in
            state.progressClosed = true
            return state.progress
        }
        await channel?.drain()
    }

    /// Drops pending updates (the job was stopped: nothing more is posted for it).
    func cancelProgress() {
        let channel = state.withLock { state in
            state.progressClosed = true
            return state.progress
        }
        channel?.cancel()
    }

    /// Declares a streaming result before the first chunk, so a stream of no chunks is still a stream.
    public func beginStream() {
        state.withLock { $0.streaming = true }
    }

    /// Declares a stream whose chunks are also returned together as the final result, whatever the
    /// worker's `returnAggregateStream` (the OpenAI passthrough relies on this for one-value answers).
    package func beginStream(aggregate: Bool) {
        state.withLock {
            $0.streaming = true
            $0.aggregate = aggregate
        }
    }

    /// Sends one chunk and returns once it was delivered. A chunk that is an object with a truthy
    /// `error` ends the stream with that error (the platform's rule); later chunks then throw.
    public func yield(_ chunk: JSONValue) async throws {
        let accepted = try state.withLock { state throws(WorkerRuntimeError) -> Bool in
            guard state.error == nil else { throw .streamAlreadyEnded }
            guard state.value == nil else { throw .mixedOutput }
            state.streaming = true
            if let error = chunk["error"], error.isTruthy {
                state.error = error
                return false
            }
            if state.aggregate { state.chunks.append(chunk) }
            return true
        }
        if accepted { try await deliver(chunk) }
    }

    public func yield(_ chunk: some Encodable) async throws {
        try await yield(try JSONValue(encoding: chunk))
    }

    /// Sets the job's single result.
    public func respond(_ value: JSONValue) throws {
        try state.withLock { state throws(WorkerRuntimeError) in
            guard !state.streaming else { throw .mixedOutput }
            guard state.value == nil else { throw .respondedTwice }
            state.value = value
        }
    }

    public func respond(_ value: some Encodable) throws {
        try respond(try JSONValue(encoding: value))
    }

    package var outcome: Outcome {
        state.withLock { state in
            if let error = state.error { return .streamError(error) }
            if state.streaming { return .stream(aggregate: state.aggregate ? state.chunks : nil) }
            if let value = state.value { return .value(value) }
            return .none
        }
    }
}

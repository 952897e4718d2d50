import Synchronization

/// The runtime's one outbound HTTP path: libcurl's multi interface on a dedicated thread, with
/// keep-alive connection reuse, timeouts, streamed bodies and cancellation that aborts the transfer.
public final class CurlHTTPClient: Sendable {
    /// A client shared by everything in the process, so connections are reused across callers.
    public static let shared = CurlHTTPClient(name: "curl-shared")

    private let loop: CurlMultiLoop
    private let nextID = Atomic<UInt64>(1)

    public init(name: String = "curl") {
        loop = CurlMultiLoop(name: name)
    }

    func nextTransferID() -> UInt64 { nextID.add(1, ordering: .relaxed).oldValue }

    /// Sends the request and reads the whole body. Throws `HTTPClientError`; any status is a response.
    public func execute(_ request: HTTPClientRequest) async throws -> HTTPClientResponse {
        let gate = CancellationGate()
        let id = nextTransferID()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<HTTPClientResponse, any Error>) in
                let transfer = CurlTransfer(id: id, request: request, delivery: .collect(continuation))
                gate.submit(transfer, to: loop)
            }
        } onCancel: {
            gate.cancel(id: id, loop: loop)
        }
    }

    /// Sends the request and returns once the response head arrives; the body follows as an
    /// AsyncSequence. Dropping or cancelling the body's consumer aborts the transfer.
    public func stream(_ request: HTTPClientRequest) async throws -> HTTPClientStreamingResponse {
        let gate = CancellationGate()
        let id = nextTransferID()
        let loop = self.loop
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation {
                (continuation: CheckedContinuation<HTTPClientStreamingResponse, any Error>) in
                let (stream, body) = AsyncThrowingStream<[UInt8], any Error>.makeStream()
                body.onTermination = { termination in
                    if case .cancelled = termination { loop.submit(.cancel(id)) }
                }
                let transfer = CurlTransfer(
                    id: id, request: request, delivery: .stream(head: continuation, body: body, stream: stream))
                gate.submit(transfer, to: loop)
            }
        } onCancel: {
            gate.cancel(id: id, loop: loop)
        }
    }
}

/// Orders "submit" and "cancel" for one request: a cancellation that lands before the transfer
/// is submitted fails it at once instead of being lost.
private final class CancellationGate: Sendable {
    private let state = Mutex<(cancelled: Bool, submitted: Bool)>((false, false))

    func submit(_ transfer: CurlTransfer, to loop: CurlMultiLoop) {
        let cancelled = state.withLock { state -> Bool in
            if !state.cancelled { state.submitted = true; loop.submit(.add(transfer)) }
            return state.cancelled
        }
        if cancelled {
            transfer.complete(error: .cancelled(method: transfer.request.method, url: transfer.request.url))
        }
    }

    func cancel(id: UInt64, loop: CurlMultiLoop) {
        state.withLock { state in
            state.cancelled = true
            if state.submitted { loop.submit(.cancel(id)) }
        }
    }
}

extension CurlHTTPClient {
    /// Sends without a Swift task: `completion` runs on the curl thread. For callers on dedicated
    /// threads (the heartbeat), which must not depend on the cooperative pool.
    func send(_ request: HTTPClientRequest, completion: @escaping @Sendable (Result<HTTPClientResponse, HTTPClientError>) -> Void) {
        let id = nextTransferID()
        loop.submit(.add(CurlTransfer(id: id, request: request, delivery: .callback(completion))))
    }
}

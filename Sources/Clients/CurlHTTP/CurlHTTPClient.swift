import Synchronization

/// An outbound HTTP client on libcurl's multi interface, driven by one dedicated thread: transfers
/// share a connection cache (keep-alive), no Swift task blocks in curl, timeouts and cancellation
/// abort the transfer. Create one per process or component and call `shutdown()` when done (it is
/// also shut down when the last reference goes): its thread ends and pending requests fail.
public final class CurlHTTPClient: Sendable {
    private let loop: CurlMultiLoop
    private let nextID = Atomic<UInt64>(1)

    /// `name` names the client in errors; `userAgent` is sent with every request.
    public init(name: String = "curl", userAgent: String = "swift-worker-runtime") {
        loop = CurlMultiLoop(name: name, userAgent: userAgent)
    }

    deinit {
        loop.requestShutdown()
    }

    /// Fails every pending request (`HTTPClientError` "the client was shut down"), ends the
    /// client's thread and returns once it has ended. Later requests fail at once.
    public func shutdown() async {
        await loop.shutdown()
    }

    package func nextTransferID() -> UInt64 { nextID.add(1, ordering: .relaxed).oldValue }

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
    /// AsyncSequence. Stopping early, dropping the body or cancelling its consumer aborts the transfer.
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
                    id: id, request: request,
                    delivery: .stream(
                        head: continuation, body: body,
                        stream: HTTPClientBody(stream: stream, abort: { loop.submit(.cancel(id)) })))
                gate.submit(transfer, to: loop)
            }
        } onCancel: {
            gate.cancel(id: id, loop: loop)
        }
    }

    /// Sends without a Swift task: `completion` runs on the client's thread. For callers on
    /// dedicated threads (the heartbeat), which must not depend on the cooperative pool.
    package func send(
        _ request: HTTPClientRequest, completion: @escaping @Sendable (Result<HTTPClientResponse, HTTPClientError>) -> Void
    ) {
        loop.submit(.add(CurlTransfer(id: nextTransferID(), request: request, delivery: .callback(completion))))
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

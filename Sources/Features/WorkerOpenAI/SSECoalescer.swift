import WorkerJSON
import WorkerRuntime

import Synchronization

/// Relays server-sent events: the first complete event at once, then whatever completes within
/// each window together (one job-stream post per window, not per token), ending with
/// `data: [DONE]` even when the upstream leaves it out.
enum SSECoalescer {
    private struct Buffer {
        var bytes: [UInt8] = []
        var ended = false
        var failure: (any Error)?
    }

    private final class SharedBuffer: Sendable {
        let state = Mutex(Buffer())
        func withLock<T>(_ body: (inout Buffer) -> T) -> T { state.withLock { body(&$0) } }
    }

    static func relay(
        _ body: some AsyncSequence<[UInt8], any Error> & Sendable, window: Duration,
        emit: @escaping @Sendable (String) async throws -> Void
    ) async throws {
        let buffer = SharedBuffer()
        let arrived = AsyncSignal()
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                do {
                    for try await chunk in body {
                        buffer.withLock { $0.bytes += chunk }
                        arrived.signal()
                    }
                    buffer.withLock { $0.ended = true }
                } catch {
                    buffer.withLock {
                        $0.ended = true
                        $0.failure = error
                    }
                }
                arrived.signal()
            }
            var lastEmit: ContinuousClock.Instant?
            var sawDone = false
            while true {
                await arrived.wait(timeout: nil)
                try Task.checkCancellation()
                if let lastEmit, !buffer.withLock({ $0.ended }) {
                    let due = lastEmit + window
                    if ContinuousClock.now < due { try await Task.sleep(until: due, clock: .continuous) }
                }
                let (text, ended, failure) = buffer.withLock { state -> (String, Bool, (any Error)?) in
                    let cut = state.ended ? state.bytes.count : completeEventsEnd(state.bytes)
                    let text = String(decoding: state.bytes[..<cut], as: UTF8.self)
                    state.bytes.removeFirst(cut)
                    return (text, state.ended, state.failure)
                }
                if !text.isEmpty {
                    if text.contains("data: [DONE]") { sawDone = true }
                    try await emit(text)
                    lastEmit = .now
                }
                if ended {
                    if let failure { throw failure }
                    if !sawDone { try await emit("data: [DONE]\n\n") }
                    return
                }
            }
        }
    }

    /// The length of the buffer's complete events (up to and including the last blank line).
    static func completeEventsEnd(_ bytes: [UInt8]) -> Int {
        var index = bytes.count - 1
        while index > 0 {
            if bytes[index] == 0x0A && bytes[index - 1] == 0x0A { return index + 1 }
            if index > 2 && bytes[index] == 0x0A && bytes[index - 1] == 0x0D && bytes[index - 2] == 0x0A {
                return index + 1
            }
            index -= 1
        }
        return 0
    }
}

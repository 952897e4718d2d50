import Synchronization

/// A response body as it arrives, chunk by chunk. Iterate it to the end, or stop early: once
/// neither the body nor an iterator over it is left (a `break`, an error, the response dropped),
/// the transfer is aborted, so an unread body is never downloaded into memory.
public struct HTTPClientBody: AsyncSequence, Sendable {
    public typealias Element = [UInt8]

    private let stream: AsyncThrowingStream<[UInt8], any Error>
    private let abort: AbortOnRelease

    init(stream: AsyncThrowingStream<[UInt8], any Error>, abort: @escaping @Sendable () -> Void) {
        self.stream = stream
        self.abort = AbortOnRelease(abort)
    }

    public func makeAsyncIterator() -> Iterator {
        Iterator(base: stream.makeAsyncIterator(), abort: abort)
    }

    public struct Iterator: AsyncIteratorProtocol {
        var base: AsyncThrowingStream<[UInt8], any Error>.Iterator
        let abort: AbortOnRelease

        public mutating func next() async throws -> [UInt8]? {
            do {
                let chunk = try await base.next()
                if chunk == nil { abort.disarm() }
                return chunk
            } catch {
                abort.disarm()
                throw error
            }
        }
    }
}

/// Aborts the transfer when the last holder lets go, unless the body was read to its end.
final class AbortOnRelease: Sendable {
    private let action: Mutex<(@Sendable () -> Void)?>

    init(_ action: @escaping @Sendable () -> Void) { self.action = Mutex(action) }

    func disarm() { action.withLock { $0 = nil } }

    deinit {
        action.withLock { $0 }?()
    }
}

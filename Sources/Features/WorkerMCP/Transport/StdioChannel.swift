#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Dispatch
import Synchronization
import WorkerJSON

/// Newline-delimited JSON-RPC over standard input and output, for an agent that launched the
/// worker as a process. Reading and writing happen on queues of their own, never on Swift's
/// cooperative pool: a client that stops reading stalls only the writer queue.
final class StdioChannel: Sendable {
    enum Line: Sendable {
        case message([UInt8])
        /// A line over the size limit, dropped whole.
        case tooLong(Int)
    }

    private let input: Int32
    private let output: Int32
    private let maxLineBytes: Int
    private let stopping = Atomic<Bool>(false)
    private let writer = DispatchQueue(label: "mcp-stdout")
    /// Bytes sent but not yet written. A client that stops reading its answers stops having its
    /// requests read once this passes `maxPendingBytes`: the answers it owes wait, nothing grows.
    private let unwritten = Atomic<Int>(0)
    let maxPendingBytes: Int
    /// Lines read but not yet taken by the server: reading pauses past `maxQueuedLines`.
    private let queued = Atomic<Int>(0)
    static let maxQueuedLines = 64
    /// Calls running: a desktop agent rarely has more than a few; past this, new ones wait.
    private let calls = Atomic<Int>(0)
    static let maxCalls = 16
    /// Standard input has ended (EOF, or the client closed it).
    private let inputEnded = Atomic<Bool>(false)
    /// When the writer last got bytes out (uptime nanoseconds): a client still reading moves it.
    private let lastWrite = Atomic<Int>(Int(DispatchTime.now().uptimeNanoseconds))
    /// After the input ended, how long answers may wait on a client that reads none before the
    /// remaining requests are dropped (a client that sent its requests and reads slowly goes on).
    static let abandonAfter: Duration = .seconds(5)

    /// Takes over standard output for the protocol: its descriptor is duplicated for messages,
    /// and descriptor 1 then points at standard error, so a stray `print` in a handler lands in
    /// the log instead of corrupting the protocol stream.
    init(maxLineBytes: Int, maxPendingBytes: Int = 64 << 20) {
        self.maxPendingBytes = maxPendingBytes
        signal(SIGPIPE, SIG_IGN)
        input = 0
        let duplicate = dup(1)
        if duplicate >= 0 {
            output = duplicate
            _ = dup2(2, 1)
        } else {
            output = 1
        }
        self.maxLineBytes = maxLineBytes
    }

    /// Lines from standard input until it ends or `stop()`; checked for a stop five times a second.
    func lines() -> AsyncStream<Line> {
        let (stream, continuation) = AsyncStream<Line>.makeStream()
        let input = self.input
        let limit = maxLineBytes
        DispatchQueue(label: "mcp-stdin").async { [self] in
            var pending: [UInt8] = []
            var dropping = 0
            var chunk = [UInt8](repeating: 0, count: 64 * 1024)
            reading: while !stopping.load(ordering: .relaxed) {
                if unwritten.load(ordering: .relaxed) > maxPendingBytes || queued.load(ordering: .relaxed) > Self.maxQueuedLines {
                    // Paused, but a client that closed its end while not reading is gone: end as at EOF
                    // (it once kept the worker alive forever, waiting to read requests nobody reads answers to).
                    if Self.hungUp(input) { break reading }
                    usleep(5000)
                    continue
                }
                var descriptor = pollfd(fd: input, events: Int16(POLLIN), revents: 0)
                let ready = poll(&descriptor, 1, 200)
                if ready == 0 || (ready < 0 && errno == EINTR) { continue }
                let count = chunk.withUnsafeMutableBytes { read(input, $0.baseAddress, $0.count) }
                if count < 0, errno == EINTR || errno == EAGAIN { continue }
                guard count > 0 else { break reading }
                var start = 0
                for index in 0..<count where chunk[index] == UInt8(ascii: "\n") {
                    if dropping > 0 {
                        continuation.yield(.tooLong(dropping + index - start))
                        dropping = 0
                    } else {
                        pending.append(contentsOf: chunk[start..<index])
                        if !pending.allSatisfy({ $0 == 0x20 || $0 == 0x0D || $0 == 0x09 }) {
                            queued.add(1, ordering: .relaxed)
                            continuation.yield(.message(pending))
                        }
                        pending.removeAll(keepingCapacity: true)
                    }
                    start = index + 1
                }
                if dropping > 0 {
                    dropping += count - start
                } else {
                    pending.append(contentsOf: chunk[start..<count])
                    if pending.count > limit {
                        dropping = pending.count
                        pending = []
                    }
                }
            }
            if !pending.isEmpty, dropping == 0 {
                queued.add(1, ordering: .relaxed)
                continuation.yield(.message(pending))
            }
            inputEnded.store(true, ordering: .relaxed)
            continuation.finish()
        }
        return stream
    }

    /// The server took a line; before it starts the work the line asks for, it waits while too
    /// many answers are unwritten, so a client that stops reading stops the work too. False when
    /// the client is gone: its input ended and it has read nothing for `abandonAfter`.
    func taken() async -> Bool {
        queued.subtract(1, ordering: .relaxed)
        while unwritten.load(ordering: .relaxed) > maxPendingBytes || calls.load(ordering: .relaxed) >= Self.maxCalls,
            !stopping.load(ordering: .relaxed), !Task.isCancelled
        {
            if inputEnded.load(ordering: .relaxed), unwritten.load(ordering: .relaxed) > maxPendingBytes {
                let idle = Int(DispatchTime.now().uptimeNanoseconds) - lastWrite.load(ordering: .relaxed)
                if Duration.nanoseconds(idle) > Self.abandonAfter { return false }
            }
            try? await Task.sleep(for: .milliseconds(5))
        }
        return true
    }

    func callStarted() { calls.add(1, ordering: .relaxed) }
    func callFinished() { calls.subtract(1, ordering: .relaxed) }

    func stop() {
        stopping.store(true, ordering: .relaxed)
    }

    /// Writes one message as a line; messages keep the order they were sent in.
    func send(_ message: JSONValue) {
        guard let bytes = try? message.serialized() else { return }
        send(bytes: bytes)
    }

    /// Writes one serialized message as a line.
    func send(bytes message: [UInt8]) {
        var line = message
        line.append(UInt8(ascii: "\n"))
        let bytes = line
        let output = self.output
        unwritten.add(bytes.count, ordering: .relaxed)
        writer.async { [self] in
            defer { unwritten.subtract(bytes.count, ordering: .relaxed) }
            var offset = 0
            while offset < bytes.count {
                let written = bytes[offset...].withUnsafeBytes { write(output, $0.baseAddress, $0.count) }
                if written < 0 {
                    if errno == EINTR || errno == EAGAIN { continue }
                    return
                }
                offset += written
                lastWrite.store(Int(DispatchTime.now().uptimeNanoseconds), ordering: .relaxed)
            }
        }
    }

    /// Waits until every message sent so far is written, or `timeout` passes: a client that
    /// stopped reading would otherwise hold the worker forever at its end (and through SIGTERM).
    /// Returns false when answers were left unwritten.
    @discardableResult
    func flush(timeout: Duration = .seconds(5)) async -> Bool {
        let written = WrittenMark()
        writer.async { written.done.store(true, ordering: .releasing) }
        let deadline = ContinuousClock.now + timeout
        while !written.done.load(ordering: .acquiring) {
            guard ContinuousClock.now < deadline else { return false }
            try? await Task.sleep(for: .milliseconds(5))
        }
        return true
    }

    /// Whether the other end of standard input is closed (a pipe with no writer left).
    private static func hungUp(_ descriptor: Int32) -> Bool {
        var probe = pollfd(fd: descriptor, events: 0, revents: 0)
        return poll(&probe, 1, 0) > 0 && probe.revents & Int16(POLLHUP | POLLERR | POLLNVAL) != 0
    }
}

/// Set by the writer queue once it reaches a flush's mark.
private final class WrittenMark: Sendable {
    let done = Atomic<Bool>(false)
}

import CCurl
import CCurlHelpers
import Synchronization

/// curl's multi interface driven by one dedicated thread, which runs until shutdown: all
/// transfers of a client share its connection cache (keep-alive) and no Swift task ever blocks
/// in curl. The thread holds the loop, never the client, so dropping the client ends it.
final class CurlMultiLoop: @unchecked Sendable {
    enum Command {
        case add(CurlTransfer)
        case cancel(UInt64)
    }

    private struct Inbox {
        var commands: [Command] = []
        var shuttingDown = false
        /// curl's multi handle is gone: nothing may wake it any more.
        var stopped = false
        var stopWaiters: [CheckedContinuation<Void, Never>] = []
    }

    private let multi: UnsafeMutableRawPointer
    private let userAgent: String
    private let inbox = Mutex(Inbox())
    // Curl-thread-only state.
    private var active: [UInt64: CurlTransfer] = [:]
    private var byHandle: [UnsafeMutableRawPointer: CurlTransfer] = [:]
    private var idleHandles: [UnsafeMutableRawPointer] = []

    /// Connections kept open for reuse after their transfers end.
    static let maxCachedConnections = 256

    init(name: String, userAgent: String) {
        self.userAgent = userAgent
        CurlGlobal.initialize()
        guard let multi = curl_multi_init() else { fatalError("curl_multi_init failed: out of memory") }
        self.multi = multi
        // curl sizes its connection cache by the transfers added so far and closes connections
        // beyond it as transfers end: under bursts of concurrent requests a third of them then
        // paid for a new TCP connection (measured against the orchestrator's downstream workers).
        // Idle connections are few and cheap; keep up to this many for reuse.
        _ = wr_multi_setopt_long(multi, CURLMOPT_MAXCONNECTS, Self.maxCachedConnections)
        if !DedicatedThread.start(name: name, { [self] in run() }) {
            // No thread, no transfers: every request fails with "shut down" instead of hanging.
            inbox.withLock { inbox in
                inbox.shuttingDown = true
                inbox.stopped = true
                curl_multi_cleanup(multi)
            }
        }
    }

    /// Queues a command for the curl thread. After shutdown, a new transfer fails at once.
    func submit(_ command: Command) {
        let refused = inbox.withLock { inbox -> CurlTransfer? in
            if inbox.shuttingDown {
                if case .add(let transfer) = command { return transfer }
                return nil
            }
            inbox.commands.append(command)
            // Under the lock, so the wake-up cannot reach a handle the thread has just released.
            curl_multi_wakeup(multi)
            return nil
        }
        if let refused {
            refused.complete(error: .shutDown(method: refused.request.method, url: refused.request.url))
        }
    }

    /// Asks the thread to end without waiting for it.
    func requestShutdown() {
        inbox.withLock { inbox in
            guard !inbox.shuttingDown else { return }
            inbox.shuttingDown = true
            curl_multi_wakeup(multi)
        }
    }

    /// Ends the thread and returns once it has released curl.
    func shutdown() async {
        requestShutdown()
        await withCheckedContinuation { continuation in
            let done = inbox.withLock { inbox -> Bool in
                if inbox.stopped { return true }
                inbox.stopWaiters.append(continuation)
                return false
            }
            if done { continuation.resume() }
        }
    }

    private func run() {
        while true {
            let (commands, shuttingDown) = inbox.withLock { inbox -> ([Command], Bool) in
                defer { inbox.commands.removeAll(keepingCapacity: true) }
                return (inbox.commands, inbox.shuttingDown)
            }
            for command in commands {
                switch command {
                case .add(let transfer):
                    if shuttingDown {
                        transfer.complete(error: .shutDown(method: transfer.request.method, url: transfer.request.url))
                    } else {
                        start(transfer)
                    }
                case .cancel(let id): cancel(id)
                }
            }
            if shuttingDown { break }
            var running: Int32 = 0
            curl_multi_perform(multi, &running)
            collectFinished()
            var numfds: Int32 = 0
            curl_multi_poll(multi, nil, 0, 1000, &numfds)
        }
        for transfer in Array(active.values) {
            finish(transfer, error: .shutDown(method: transfer.request.method, url: transfer.request.url))
        }
        for easy in idleHandles { curl_easy_cleanup(easy) }
        idleHandles.removeAll()
        let waiters = inbox.withLock { inbox -> [CheckedContinuation<Void, Never>] in
            curl_multi_cleanup(multi)
            inbox.stopped = true
            defer { inbox.stopWaiters.removeAll() }
            return inbox.stopWaiters
        }
        for waiter in waiters { waiter.resume() }
    }

    private func start(_ transfer: CurlTransfer) {
        let easy = idleHandles.popLast() ?? curl_easy_init()
        guard let easy else {
            transfer.complete(
                error: .setup(method: transfer.request.method, url: transfer.request.url, reason: "curl_easy_init failed"))
            return
        }
        if let reason = CurlRequestSetup.configure(easy, for: transfer, userAgent: userAgent) {
            curl_easy_reset(easy)
            idleHandles.append(easy)
            transfer.complete(error: .setup(method: transfer.request.method, url: transfer.request.url, reason: reason))
            return
        }
        transfer.easy = easy
        active[transfer.id] = transfer
        byHandle[easy] = transfer
        curl_multi_add_handle(multi, easy)
    }

    private func cancel(_ id: UInt64) {
        guard let transfer = active[id] else { return }
        finish(transfer, error: .cancelled(method: transfer.request.method, url: transfer.request.url))
    }

    private func collectFinished() {
        var remaining: Int32 = 0
        while let message = curl_multi_info_read(multi, &remaining) {
            guard message.pointee.msg == CURLMSG_DONE, let easy = message.pointee.easy_handle,
                let transfer = byHandle[easy]
            else { continue }
            let code = message.pointee.data.result
            if code == CURLE_OK {
                finish(transfer, error: nil)
            } else if transfer.overflowed || (code == CURLE_FILESIZE_EXCEEDED && transfer.request.maxResponseBytes != nil) {
                finish(
                    transfer,
                    error: .responseTooLarge(
                        method: transfer.request.method, url: transfer.request.url, limit: transfer.request.maxResponseBytes ?? 0))
            } else {
                var reason = transfer.errorMessage
                if reason.isEmpty { reason = String(cString: curl_easy_strerror(code)) }
                finish(
                    transfer,
                    error: .transport(
                        curlCode: Int32(code.rawValue), method: transfer.request.method, url: transfer.request.url,
                        reason: reason))
            }
        }
    }

    private func finish(_ transfer: CurlTransfer, error: HTTPClientError?) {
        if let easy = transfer.easy {
            curl_multi_remove_handle(multi, easy)
            byHandle[easy] = nil
            curl_easy_reset(easy)
            if idleHandles.count < 64 { idleHandles.append(easy) } else { curl_easy_cleanup(easy) }
            transfer.easy = nil
        }
        active[transfer.id] = nil
        transfer.complete(error: error)
    }
}

enum CurlGlobal {
    private static let once: Void = { curl_global_init(Int(CURL_GLOBAL_DEFAULT)) }()
    static func initialize() { _ = once }
}

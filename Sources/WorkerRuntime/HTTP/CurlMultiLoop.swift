import CCurl
import CCurlHelpers
import Synchronization

/// curl's multi interface driven by one dedicated thread: all transfers of a client share its
/// connection cache (keep-alive) and no Swift task ever blocks in curl.
final class CurlMultiLoop: @unchecked Sendable {
    enum Command {
        case add(CurlTransfer)
        case cancel(UInt64)
    }

    private let multi: UnsafeMutableRawPointer
    private let pending = Mutex<[Command]>([])
    // Curl-thread-only state.
    private var active: [UInt64: CurlTransfer] = [:]
    private var byHandle: [UnsafeMutableRawPointer: CurlTransfer] = [:]
    private var idleHandles: [UnsafeMutableRawPointer] = []

    init(name: String) {
        CurlGlobal.initialize()
        guard let multi = curl_multi_init() else { fatalError("curl_multi_init failed: out of memory") }
        self.multi = multi
        DedicatedThread.start(name: name) { [self] in run() }
    }

    func submit(_ command: Command) {
        pending.withLock { $0.append(command) }
        curl_multi_wakeup(multi)
    }

    private func run() {
        while true {
            let commands = pending.withLock { queue -> [Command] in
                defer { queue.removeAll(keepingCapacity: true) }
                return queue
            }
            for command in commands {
                switch command {
                case .add(let transfer): start(transfer)
                case .cancel(let id): cancel(id)
                }
            }
            var running: Int32 = 0
            curl_multi_perform(multi, &running)
            collectFinished()
            var numfds: Int32 = 0
            curl_multi_poll(multi, nil, 0, 1000, &numfds)
        }
    }

    private func start(_ transfer: CurlTransfer) {
        let easy = idleHandles.popLast() ?? curl_easy_init()
        guard let easy else {
            transfer.complete(
                error: .setup(method: transfer.request.method, url: transfer.request.url, reason: "curl_easy_init failed"))
            return
        }
        if let reason = CurlRequestSetup.configure(easy, for: transfer) {
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

import Dispatch
import Logging
import Synchronization

/// The platform's heartbeat (section 1.9), driven from a dedicated OS thread: a handler that
/// saturates the cooperative pool cannot delay it. Sends, then sleeps one interval.
final class Heartbeat: Sendable {
    private let urls: PlatformURLs
    private let apiKey: String
    private let interval: Duration
    private let inProgress: @Sendable () -> [String]
    private let client: CurlHTTPClient
    private let logger: Logger
    private let wake = DispatchSemaphore(value: 0)
    private let stopped = Atomic<Bool>(false)

    init(
        urls: PlatformURLs, apiKey: String, interval: Duration, client: CurlHTTPClient = .shared, logger: Logger,
        inProgress: @escaping @Sendable () -> [String]
    ) {
        self.urls = urls
        self.apiKey = apiKey
        self.interval = interval
        self.inProgress = inProgress
        self.client = client
        self.logger = logger
    }

    func start() {
        DedicatedThread.start(name: "heartbeat") { [self] in
            while !stopped.load(ordering: .acquiring) {
                sendOne()
                _ = wake.wait(timeout: .now() + .nanoseconds(Int(interval.nanoseconds)))
            }
        }
    }

    func stop() {
        stopped.store(true, ordering: .releasing)
        wake.signal()
    }

    private func sendOne() {
        guard let url = urls.ping(inProgress: inProgress()) else { return }
        let done = DispatchSemaphore(value: 0)
        let request = HTTPRequest(
            url: url, headers: [("Authorization", apiKey)], connectTimeout: interval, timeout: interval * 2)
        let logger = self.logger
        client.send(request) { result in
            switch result {
            case .success(let response) where response.status >= 400:
                logger.warning("Ping Request Error: HTTP \(response.status)")
            case .failure(let error):
                logger.warning("Ping Request Error: \(error)")
            case .success:
                break
            }
            done.signal()
        }
        done.wait()
    }
}

extension Duration {
    var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }
}

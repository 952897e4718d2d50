import CurlHTTP
import Dispatch
import Logging
import Synchronization

/// The platform's heartbeat (docs/protocol.md, section 1.9), driven from a dedicated OS thread: a handler that
/// saturates the cooperative pool cannot delay it. One ping per interval, whatever the platform's
/// response time (at most two outstanding, each with a timeout of two intervals).
final class Heartbeat: Sendable {
    private let urls: PlatformURLs
    private let apiKey: String
    private let interval: Duration
    private let inProgress: @Sendable () -> [String]
    private let client: CurlHTTPClient
    private let logger: Logger
    private let wake = DispatchSemaphore(value: 0)
    private let stopped = Atomic<Bool>(false)
    private let outstanding = Atomic<Int>(0)

    init(
        urls: PlatformURLs, apiKey: String, interval: Duration, client: CurlHTTPClient, logger: Logger,
        inProgress: @escaping @Sendable () -> [String]
    ) {
        self.urls = urls
        self.apiKey = apiKey
        self.interval = interval
        self.inProgress = inProgress
        self.client = client
        self.logger = logger
    }

    /// Starts the heartbeat when the platform expects one (a key, a pod id and a ping URL);
    /// returns how to stop it.
    static func start(
        configuration: WorkerConfiguration, client: CurlHTTPClient, logger: Logger,
        inProgress: @escaping @Sendable () -> [String]
    ) -> @Sendable () -> Void {
        guard configuration.heartbeatEnabled, let platform = configuration.platform, let key = configuration.apiKey else {
            return {}
        }
        let heartbeat = Heartbeat(
            urls: PlatformURLs(endpoints: platform), apiKey: key, interval: configuration.pingInterval, client: client,
            logger: logger, inProgress: inProgress)
        heartbeat.start()
        return { heartbeat.stop() }
    }

    func start() {
        let started = DedicatedThread.start(name: "heartbeat") { [self] in
            var next = DispatchTime.now()
            while !stopped.load(ordering: .acquiring) {
                sendOne()
                next = next + .nanoseconds(Int(interval.nanoseconds))
                if next < .now() { next = .now() }
                _ = wake.wait(timeout: next)
            }
        }
        if !started { logger.error("No thread for the heartbeat (a process limit?): the platform will not see pings") }
    }

    func stop() {
        stopped.store(true, ordering: .releasing)
        wake.signal()
    }

    private func sendOne() {
        guard let url = urls.ping(inProgress: inProgress()) else { return }
        guard outstanding.add(1, ordering: .relaxed).newValue <= 2 else {
            outstanding.subtract(1, ordering: .relaxed)
            logger.warning("Ping skipped: the platform has not answered the last two.")
            return
        }
        let request = HTTPClientRequest(
            url: url, headers: [("Authorization", apiKey)], connectTimeout: interval, timeout: interval * 2)
        let logger = self.logger
        client.send(request) { [self] result in
            switch result {
            case .success(let response) where response.status >= 400:
                logger.warning("Ping Request Error: HTTP \(response.status)")
            case .failure(let error):
                logger.warning("Ping Request Error: \(error)")
            case .success:
                break
            }
            self.outstanding.subtract(1, ordering: .relaxed)
        }
    }
}

extension Duration {
    package var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }
}

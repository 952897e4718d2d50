import HummingbirdCore
import Logging

/// At most `limit` connections open at once; past it the listener stops accepting (connections
/// wait in the kernel's backlog) and says so in the log, once each time the cap is reached.
struct ConnectionCap: AvailableConnectionsDelegate {
    let limit: Int
    let logger: Logger
    private var open = 0
    private var warned = false

    init(_ limit: Int, logger: Logger) {
        self.limit = max(1, limit)
        self.logger = logger
    }

    mutating func connectionOpened() {
        open += 1
        if open >= limit, !warned {
            warned = true
            logger.warning("\(open) connections are open, the limit (HTTP_MAX_CONNECTIONS): new ones wait until some close.")
        }
    }

    mutating func connectionClosed() {
        open -= 1
        if open < limit * 3 / 4 { warned = false }
    }

    func isAcceptingNewConnections() -> Bool { open < limit }
}

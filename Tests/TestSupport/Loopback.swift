import Hummingbird
import Logging
import NIOCore
import Synchronization

/// Serves `router` on 127.0.0.1 with a free port for the duration of `body`.
package func runOnLoopback<Context: RequestContext, T: Sendable>(
    _ router: Router<Context>, _ body: @Sendable (_ base: String) async throws -> T
) async throws -> T where Context.Source == ApplicationRequestContextSource {
    let port = Mutex<Int?>(nil)
    var logger = Logger(label: "test-server")
    logger.logLevel = .critical
    let app = Application(
        router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
        onServerRunning: { channel in port.withLock { $0 = channel.localAddress?.port } }, logger: logger)
    return try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask {
            try await app.run()
            return nil
        }
        while port.withLock({ $0 }) == nil { try await Task.sleep(for: .milliseconds(2)) }
        let result = try await body("http://127.0.0.1:\(port.withLock { $0 }!)")
        group.cancelAll()
        return result
    }
}

import Hummingbird
import Logging
import NIOCore
import Synchronization

/// Serves `router` on `host:port` (0: a free port) until cancelled; `onListening` gets the port.
/// For the fakes of upstream services, run in process by tests and as executables by benchmarks.
package func serve<Context: RequestContext>(
    _ router: Router<Context>, host: String = "127.0.0.1", port: Int = 0, label: String, onListening: @escaping @Sendable (Int) -> Void
) async throws where Context.Source == ApplicationRequestContextSource {
    try await application(router, host: host, port: port, label: label, onListening: onListening).run()
}

/// Serves `router` on 127.0.0.1 with a free port for the duration of `body`.
package func runOnLoopback<Context: RequestContext, T: Sendable>(
    _ router: Router<Context>, label: String = "test-server", _ body: @Sendable (_ base: String) async throws -> T
) async throws -> T where Context.Source == ApplicationRequestContextSource {
    let port = Mutex<Int?>(nil)
    let app = application(router, host: "127.0.0.1", port: 0, label: label) { listening in port.withLock { $0 = listening } }
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

private func application<Context: RequestContext>(
    _ router: Router<Context>, host: String, port: Int, label: String, onListening: @escaping @Sendable (Int) -> Void
) -> some ApplicationProtocol where Context.Source == ApplicationRequestContextSource {
    var logger = Logger(label: label)
    logger.logLevel = .critical
    return Application(
        router: router, configuration: .init(address: .hostname(host, port: port)),
        onServerRunning: { channel in onListening(channel.localAddress?.port ?? port) }, logger: logger)
}

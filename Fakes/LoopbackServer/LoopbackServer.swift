import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle
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
    return try await whileServing(app) {
        while port.withLock({ $0 }) == nil { try await Task.sleep(for: .milliseconds(2)) }
        return try await body("http://127.0.0.1:\(port.withLock { $0 }!)")
    }
}

/// Runs `app` while `body` runs, then stops it gracefully: it stops accepting, lets requests in
/// flight end, and is cancelled only if that takes over `drain`. Cancelling a server straight away
/// can trap in NIO ("Deinited NIOAsyncWriter without calling finish()", swift-nio#3481) when a
/// connection it accepted is still waiting to be served.
package func whileServing<T: Sendable>(
    _ app: some ApplicationProtocol, drain: Duration = .seconds(2), _ body: () async throws -> T
) async throws -> T {
    var logger = Logger(label: "loopback-server")
    logger.logLevel = .critical
    let group = ServiceGroup(configuration: .init(services: [app], logger: logger))
    let running = Task { try await group.run() }
    func stop() async {
        await group.triggerGracefulShutdown()
        let deadline = Task {
            try await Task.sleep(for: drain)
            running.cancel()
        }
        _ = await running.result
        deadline.cancel()
    }
    do {
        let result = try await body()
        await stop()
        return result
    } catch {
        await stop()
        throw error
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

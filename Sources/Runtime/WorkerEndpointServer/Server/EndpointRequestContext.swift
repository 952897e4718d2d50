import Hummingbird
import NIOCore

/// Hummingbird's basic context plus the request's connection, so a route can tell when its client
/// went away (MCP cancels the job of a dropped request) and who the client is.
package struct EndpointRequestContext: RequestContext {
    package var coreContext: CoreRequestContextStorage
    /// The client's connection; its `closeFuture` completes when the client disconnects.
    package let channel: any Channel

    package init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.channel = source.channel
    }

    /// The client's address without the port (a client's requests come from many ports).
    package var remoteHost: String {
        channel.remoteAddress?.ipAddress ?? "unknown"
    }
}

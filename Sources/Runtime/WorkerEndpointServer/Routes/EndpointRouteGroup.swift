import HTTPTypes
import Hummingbird

/// Routes another module adds to the endpoint server (the OpenAI routes here; MCP next). They are
/// mounted under `/` and under `/v2/{endpoint id}/`, behind the server's request guard (Host,
/// Origin, body type), API-key check and worker-id header, and reach jobs only through
/// `EndpointRouteContext`, never the store itself. A feature contributes one by listing it in
/// `WorkerFeature.contributions`.
package struct EndpointRouteGroup: Sendable {
    package let name: String
    package let add: @Sendable (_ router: any RouterMethods<EndpointRequestContext>, _ server: EndpointRouteContext) -> Void
    /// How the group's clients are told that the request guard refused them, for the paths it
    /// recognises as its own (nil for others): a protocol with its own error shape (MCP's
    /// JSON-RPC errors) answers in it. The server's `{"error": "…"}` otherwise.
    package let refusal: (@Sendable (_ path: String, _ status: HTTPResponse.Status, _ message: String) -> Response?)?
    /// The paths whose requests the group checks itself, asked once with the server's context
    /// (nil: none). The server's API-key check skips them: MCP with OAuth takes the key as one
    /// credential among others there, and publishes its metadata to anyone.
    package let authenticatesItself: (@Sendable (_ server: EndpointRouteContext) -> (@Sendable (_ path: String) -> Bool)?)?

    package init(
        name: String, add: @escaping @Sendable (_ router: any RouterMethods<EndpointRequestContext>, _ server: EndpointRouteContext) -> Void,
        refusal: (@Sendable (_ path: String, _ status: HTTPResponse.Status, _ message: String) -> Response?)? = nil,
        authenticatesItself: (@Sendable (_ server: EndpointRouteContext) -> (@Sendable (_ path: String) -> Bool)?)? = nil
    ) {
        self.name = name
        self.add = add
        self.refusal = refusal
        self.authenticatesItself = authenticatesItself
    }
}

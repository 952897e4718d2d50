import Hummingbird

/// Routes another module adds to the endpoint server (the OpenAI routes here; MCP next). They are
/// mounted under `/` and under `/v2/{endpoint id}/`, behind the server's API-key check and
/// worker-id header, and reach jobs only through `EndpointRouteContext`, never the store itself.
/// A feature contributes one by listing it in `WorkerFeature.contributions`.
package struct EndpointRouteGroup: Sendable {
    package let name: String
    package let add: @Sendable (_ router: any RouterMethods<EndpointRequestContext>, _ server: EndpointRouteContext) -> Void

    package init(
        name: String, add: @escaping @Sendable (_ router: any RouterMethods<EndpointRequestContext>, _ server: EndpointRouteContext) -> Void
    ) {
        self.name = name
        self.add = add
    }
}

import HTTPTypes
import Hummingbird
import Logging
import MCPAuth
import Synchronization
import WorkerEndpointServer
import WorkerJSON
import WorkerRuntime

/// `/mcp` as an OAuth 2.1 protected resource (docs/mcp.md, "Authorization"): the metadata
/// documents, the bearer check of every request, and the scope check of every tool call.
struct MCPAuthorization: Sendable {
    let verifier: TokenVerifier
    let resource: ProtectedResource

    init(settings: MCPAuthSettings, server: EndpointRouteContext) {
        let worker = server.worker
        let toolScopes = worker.tools.tools.flatMap { settings.scopes(forTool: $0.name, declared: $0.scopes) }
        resource = ProtectedResource(settings: settings, toolScopes: toolScopes, name: worker.tools.serverName)
        verifier = TokenVerifier(
            settings: settings, http: CurlIssuerHTTP(client: worker.httpClient), apiKey: server.server?.apiKey, logger: worker.logger)
    }

    /// One per worker (the routes are added twice, at `/` and under `/v2/{id}/`, and must share
    /// one key cache and one token cache), made with the first route and warmed at once, so a
    /// misconfigured issuer shows in the log at start-up.
    final class PerWorker: Sendable {
        private let made = Mutex<(worker: ObjectIdentifier, authorization: MCPAuthorization)?>(nil)

        func get(_ server: EndpointRouteContext) -> MCPAuthorization? {
            guard let settings = server.worker.settings[MCPAuthSettings.self] else { return nil }
            let worker = ObjectIdentifier(server.worker.httpClient)
            return made.withLock { made in
                if let made, made.worker == worker { return made.authorization }
                let authorization = MCPAuthorization(settings: settings, server: server)
                made = (worker, authorization)
                Task { await authorization.verifier.warm() }
                return authorization
            }
        }
    }

    /// The metadata documents: under `/.well-known/oauth-protected-resource`, with or without the
    /// resource's path after it (RFC 9728 §3.1), at the root and under `/v2/{endpoint id}/`.
    func addMetadataRoutes(to router: any RouterMethods<EndpointRequestContext>) {
        let document = resource.document
        let handler: @Sendable (Request, EndpointRequestContext) async throws -> Response = { _, _ in
            var response = Response.json(document)
            response.headers[.cacheControl] = "public, max-age=3600"
            return response
        }
        router.get(".well-known/oauth-protected-resource", use: handler)
        router.get(".well-known/oauth-protected-resource/**", use: handler)
    }

    /// The paths this checks itself, so the server's API-key check lets them through.
    static func ownsPath(_ path: String) -> Bool {
        path.hasSuffix("/mcp") || path.contains(ProtectedResource.wellKnownPath)
    }

    /// The request's grant, or the response refusing it.
    func authenticate(_ request: Request) async -> Result<VerifiedToken, AuthRefusal> {
        let inQuery = request.uri.query.map { query in
            query.split(separator: "&").contains { $0.hasPrefix("access_token=") || $0 == "access_token" }
        } ?? false
        do {
            return .success(try await verifier.authenticate(authorization: request.headers[.authorization], tokenInQuery: inQuery))
        } catch {
            return .failure(error)
        }
    }

    /// A refusal as MCP clients read it: the challenge in `WWW-Authenticate` (the `mcp` SDKs
    /// start their OAuth flow from it) and a JSON-RPC error saying why.
    func response(_ refusal: AuthRefusal, logger: Logger) -> Response {
        logger.debug("MCP authorization refused a request (\(refusal.status)): \(refusal.message)")
        var response = Response.json(
            MCPError(code: -32001, message: refusal.message, data: nil).message(id: .null), status: HTTPResponse.Status(code: refusal.status))
        if let challenge = refusal.challenge(metadataURL: resource.metadataURL) { response.headers[.wwwAuthenticate] = challenge }
        if let retry = refusal.retryAfter { response.headers[.retryAfter] = String(retry) }
        return response
    }
}

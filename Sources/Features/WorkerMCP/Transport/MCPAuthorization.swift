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
        let resource = resource
        let verifier = verifier
        let handler: @Sendable (Request, EndpointRequestContext) async throws -> Response = { request, _ in
            // The issuer as its own metadata spells it, once known: clients compare the two.
            var response = Response.json(resource.document(issuer: await verifier.canonicalIssuer))
            response.headers[.cacheControl] = "public, max-age=3600"
            if request.method == .head { response.body = ResponseBody() }
            return response
        }
        for path in [".well-known/oauth-protected-resource", ".well-known/oauth-protected-resource/**"] {
            router.get(RouterPath(path), use: handler)
            router.head(RouterPath(path), use: handler)
        }
    }

    /// The paths this checks itself, so the server's API-key check lets them through: exactly
    /// `/mcp` and the metadata, at the root or under `/v2/{endpoint id}/`. Nothing looser: another
    /// group's route whose path merely ends the same way (`/openai/v1/…/mcp`) keeps the key check.
    static func ownsPath(_ path: String) -> Bool {
        var rest = Substring(path)
        if rest.hasPrefix("/v2/") {
            let afterPrefix = rest.dropFirst(4)
            guard let slash = afterPrefix.firstIndex(of: "/"), slash != afterPrefix.startIndex else { return false }
            rest = afterPrefix[slash...]
        }
        let wellKnown = ProtectedResource.wellKnownPath
        return rest == "/mcp" || rest == wellKnown || rest.hasPrefix(wellKnown + "/")
    }

    /// The request's grant, or the response refusing it.
    func authenticate(_ request: Request) async -> Result<VerifiedToken, AuthRefusal> {
        // The decoded names too: `access%5Ftoken` is the same parameter to every server framework.
        let inQuery =
            request.uri.query.map { query in
                query.split(separator: "&").contains { $0.hasPrefix("access_token=") || $0 == "access_token" }
            } ?? false || (request.uri.query != nil && request.uri.queryParameters.has("access_token"))
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

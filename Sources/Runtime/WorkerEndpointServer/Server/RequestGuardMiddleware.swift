import HTTPTypes
import Hummingbird

/// What the endpoint server refuses from a request's head alone, on every route but the health
/// check: a `Host` or `Origin` the `HostOriginPolicy` refuses (421, 403), and a body that is not
/// JSON (415). Every body this server reads is JSON, and the content types a web page may send
/// without a CORS preflight (`text/plain`, forms) are exactly the ones refused, so a page can
/// neither write to a worker nor, by rebinding a name, read its answers. A body without
/// `Content-Type` is taken as JSON (it is then parsed as such); a request without a body (`GET
/// /status`, `POST /cancel`) is never refused for its type. The health check answers any Host:
/// the platform's checks come addressed to whatever name or address reaches the worker.
package struct RequestGuard: Sendable {
    package let policy: HostOriginPolicy
    package let healthPath: String
    /// The handler's own check (`WorkerOptions.refusesRequest`).
    package var handlerCheck: (@Sendable (_ header: (String) -> String?) -> (status: Int, message: String)?)?

    package init(policy: HostOriginPolicy, healthPath: String) {
        self.policy = policy
        self.healthPath = healthPath
    }

    package struct Refusal: Equatable, Sendable {
        package let status: HTTPResponse.Status
        package let message: String
    }

    /// Why a request to `path` (without its query) with these headers is refused; nil when it is not.
    package func refusal(path: String, authority: String?, headers: HTTPFields) -> Refusal? {
        guard path != healthPath else { return nil }
        if let denial = policy.check(host: authority, origin: headers.firstValue(.origin)) {
            switch denial {
            case .foreignOrigin: return Refusal(status: .forbidden, message: denial.message)
            case .foreignHost: return Refusal(status: .misdirectedRequest, message: denial.message)
            }
        }
        if let handlerCheck, let (status, message) = handlerCheck({ name in HTTPField.Name(name).flatMap { headers[$0] } }) {
            return Refusal(status: HTTPResponse.Status(code: status), message: message)
        }
        if let type = headers.firstValue(.contentType), !MediaRange.isJSON(contentType: type), Self.hasBody(headers) {
            return Refusal(
                status: .unsupportedMediaType,
                message: "Content-Type '\(type)' is not JSON: send the body as application/json (curl: -H 'Content-Type: application/json')")
        }
        return nil
    }

    /// A request head's path without its query, as routes and the middleware see it.
    static func path(of head: HTTPRequest) -> String {
        let target = head.path ?? "/"
        return target.firstIndex(of: "?").map { String(target[..<$0]) } ?? target
    }

    /// Whether the request carries a body: a length above 0, or a chunked one.
    static func hasBody(_ headers: HTTPFields) -> Bool {
        if headers.firstValue(.transferEncoding) != nil { return true }
        guard let length = headers.firstValue(.contentLength) else { return false }
        return Int(length).map { $0 > 0 } ?? true
    }
}

/// Applies the `RequestGuard` before anything else looks at a request (the API key included).
/// `render` shapes the refusal for the path (MCP answers with a JSON-RPC error, the endpoint API
/// with `{"error": "…"}`).
struct RequestGuardMiddleware: RouterMiddleware {
    typealias Context = EndpointRequestContext

    let requestGuard: RequestGuard
    let render: @Sendable (_ path: String, _ refusal: RequestGuard.Refusal) -> Response

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let path = request.uri.path
        guard let refusal = requestGuard.refusal(path: path, authority: request.head.authority, headers: request.headers) else {
            return try await next(request, context)
        }
        return render(path, refusal)
    }
}

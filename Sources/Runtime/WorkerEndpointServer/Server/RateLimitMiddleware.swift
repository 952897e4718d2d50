import HTTPTypes
import Hummingbird
import Logging
import WorkerJSON
import WorkerRuntime

/// Per-client request budgets on the HTTP modes (`RATE_LIMIT_<ROUTE>=100/10s`): the client is
/// the API key when it presents the server's, else its address (an unchecked bearer token, or an
/// OAuth token not yet checked, would let a client dodge its budget by inventing keys). Every limited response carries
/// `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset`; a request over budget gets 429
/// with `Retry-After`. When the shared store fails (Redis down) the process counts on its own.
struct RateLimitMiddleware: RouterMiddleware {
    typealias Context = EndpointRequestContext

    let limits: RateLimits
    let store: any RateLimitStore
    let fallback: InProcessRateLimitStore
    /// The server's API key, if it has one.
    let key: [UInt8]?
    let healthPath: String
    let logger: Logger

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let path = request.uri.path
        guard path != healthPath, let route = RateLimitedRoute.of(path: path), let rule = limits.rule(for: route) else {
            return try await next(request, context)
        }
        let key = "\(route.rawValue):\(clientIdentity(request, context))"
        let counted: RateLimitCount
        do {
            counted = try await store.hit(key, window: rule.window)
        } catch {
            logger.warning("Rate limits: the \(store.name) store failed (\(error)); counting in this process for now")
            counted = try await fallback.hit(key, window: rule.window)
        }
        let reset = Self.wholeSeconds(counted.resetIn)
        let headers: HTTPFields = [
            Self.limitHeader: String(rule.limit), Self.remainingHeader: String(max(0, rule.limit - counted.count)),
            Self.resetHeader: String(reset),
        ]
        guard counted.count <= rule.limit else {
            var response = Response.json(
                ["error": .string("rate limit exceeded: \(rule.limit) \(route.rawValue) requests per \(rule.window) for this client; retry in \(reset) s")],
                status: .tooManyRequests)
            response.headers.append(contentsOf: headers)
            response.headers[.retryAfter] = String(reset)
            return response
        }
        do {
            var response = try await next(request, context)
            response.headers.append(contentsOf: headers)
            return response
        } catch let error as any HTTPResponseError {
            var response = try error.response(from: request, context: context)
            response.headers.append(contentsOf: headers)
            return response
        }
    }

    private func clientIdentity(_ request: Request, _ context: Context) -> String {
        if let key, APIKeyMiddleware<Context>.presentsKey(request.headers, key: key) {
            // The key itself is never stored or sent to Redis: a hash names it.
            var hash: UInt64 = 0xcbf2_9ce4_8422_2325
            for byte in key { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
            return "key:" + String(hash, radix: 16)
        }
        return "ip:" + context.remoteHost
    }

    /// Whole seconds, rounded up (a client told 0 would retry at once).
    static func wholeSeconds(_ duration: Duration) -> Int {
        let (seconds, attoseconds) = duration.components
        return max(1, Int(seconds) + (attoseconds > 0 ? 1 : 0))
    }

    static let limitHeader = HTTPField.Name("RateLimit-Limit")!
    static let remainingHeader = HTTPField.Name("RateLimit-Remaining")!
    static let resetHeader = HTTPField.Name("RateLimit-Reset")!
}

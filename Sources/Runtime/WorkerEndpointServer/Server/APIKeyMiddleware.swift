import HTTPTypes
import Hummingbird
import WorkerRuntime

/// Requires the API key on every request but the health check, as RunPod's API does:
/// `Authorization: Bearer <key>` or the bare key, compared in constant time.
struct APIKeyMiddleware<Context: RequestContext>: RouterMiddleware {
    let key: [UInt8]
    let healthPath: String
    /// Paths checked by their own route group (`EndpointRouteGroup.authenticatesItself`).
    var skips: @Sendable (_ path: String) -> Bool = { _ in false }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let path = request.uri.path
        guard path != healthPath, !skips(path) else { return try await next(request, context) }
        guard Self.presentsKey(request.headers, key: key) else {
            throw APIError.unauthorized("missing or wrong API key: send Authorization: Bearer <RUNPOD_API_KEY>")
        }
        return try await next(request, context)
    }

    /// Whether `headers` carry `key`, as `Bearer <key>` or bare.
    /// One header only: with two, which one counts would depend on who reads them (the MCP route
    /// refuses two as well). The scheme in any case, then one or more spaces (RFC 9110).
    static func presentsKey(_ headers: HTTPFields, key: [UInt8]) -> Bool {
        let values = headers[values: .authorization]
        guard values.count <= 1 else { return false }
        let presented = values.first ?? ""
        return constantTimeEqual(bearerCredential(presented) ?? Array(presented.utf8), key)
    }
}

/// Adds `X-Runpod-Worker-Id` to every response (the balancer's worker affinity relies on it).
struct WorkerIDMiddleware<Context: RequestContext>: RouterMiddleware {
    let workerID: String

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            var response = try await next(request, context)
            response.headers[workerIDHeader] = workerID
            return response
        } catch let error as any HTTPResponseError {
            var response = try error.response(from: request, context: context)
            response.headers[workerIDHeader] = workerID
            return response
        }
    }
}

private let workerIDHeader = HTTPField.Name("X-Runpod-Worker-Id")!

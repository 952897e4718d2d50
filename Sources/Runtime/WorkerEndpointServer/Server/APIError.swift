import EndpointAPI
import HTTPTypes
import Hummingbird
import NIOCore
import WorkerJSON

/// A refused endpoint-API request: the status and a message that says what to fix.
/// Rendered as `{"error": "<message>"}`, the shape RunPod's API uses.
package struct APIError: Error, CustomStringConvertible, Sendable, HTTPResponseError {
    private enum Code: Sendable {
        case badRequest, unauthorized, notFound, tooLarge, conflict, unavailable, tooManyRequests, internalError
    }

    private let code: Code
    package let message: String
    /// Seconds for `Retry-After`, on a 429 or 503.
    private var retryAfter: Int?

    package static func badRequest(_ message: String) -> Self { Self(code: .badRequest, message: message) }
    package static func unauthorized(_ message: String) -> Self { Self(code: .unauthorized, message: message) }
    package static func notFound(_ message: String) -> Self { Self(code: .notFound, message: message) }
    package static func tooLarge(_ message: String) -> Self { Self(code: .tooLarge, message: message) }
    package static func conflict(_ message: String) -> Self { Self(code: .conflict, message: message) }
    package static func unavailable(_ message: String) -> Self { Self(code: .unavailable, message: message) }
    /// A 503 with `Retry-After`: a server the worker depends on is out for now.
    package static func unavailable(_ message: String, retryAfter seconds: Int) -> Self {
        Self(code: .unavailable, message: message, retryAfter: seconds)
    }
    /// A 500: something the worker keeps (a record in Redis) is damaged; the message names it.
    package static func internalError(_ message: String) -> Self { Self(code: .internalError, message: message) }
    /// A 429 with `Retry-After`: a budget is full for now, not the request wrong.
    package static func tooManyRequests(_ message: String, retryAfter seconds: Int) -> Self {
        Self(code: .tooManyRequests, message: message, retryAfter: seconds)
    }

    package var status: HTTPResponse.Status {
        switch code {
        case .badRequest: return .badRequest
        case .unauthorized: return .unauthorized
        case .notFound: return .notFound
        case .tooLarge: return .contentTooLarge
        case .conflict: return .conflict
        case .unavailable: return .serviceUnavailable
        case .tooManyRequests: return .tooManyRequests
        case .internalError: return .internalServerError
        }
    }

    package var description: String { "HTTP \(status.code): \(message)" }

    package func response(from request: Request, context: some RequestContext) throws -> Response {
        var response = Response.json(["error": .string(message)], status: status)
        if let retryAfter { response.headers[.retryAfter] = String(retryAfter) }
        return response
    }
}

extension Response {
    /// A job's status envelope.
    package static func json(_ report: JobStatusReport) -> Response {
        let bytes = (try? report.serialized()) ?? Array(#"{"error":"the response could not be encoded"}"#.utf8)
        return Response(status: .ok, headers: jsonHeaders, body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
    }

    /// Built once: a response's fields are copied on write, and building them costs more than a copy.
    private static let jsonHeaders: HTTPFields = [.contentType: "application/json"]

    /// A JSON response of a body already serialized.
    package static func json(bytes: [UInt8], status: HTTPResponse.Status = .ok) -> Response {
        Response(status: status, headers: jsonHeaders, body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
    }

    /// A JSON response.
    package static func json(_ value: JSONValue, status: HTTPResponse.Status = .ok) -> Response {
        let bytes = (try? value.serialized()) ?? Array(#"{"error":"the response could not be encoded"}"#.utf8)
        return Response(status: status, headers: jsonHeaders, body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
    }
}

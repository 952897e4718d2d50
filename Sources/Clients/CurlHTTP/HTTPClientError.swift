/// A failed HTTP exchange: names the request, the URL (without its credentials) and what went wrong.
public struct HTTPClientError: Error, CustomStringConvertible, Sendable {
    private enum Code: Sendable, Equatable {
        case transport(curlCode: Int32)
        case timedOut
        case cancelled
        case setup
        case shutDown
        case responseTooLarge
    }

    private let code: Code
    package let method: String
    package let url: String
    package let reason: String

    package static func transport(curlCode: Int32, method: String, url: String, reason: String) -> Self {
        // CURLE_OPERATION_TIMEDOUT is 28.
        Self(code: curlCode == 28 ? .timedOut : .transport(curlCode: curlCode), method: method, url: url, reason: reason)
    }

    static func cancelled(method: String, url: String) -> Self {
        Self(code: .cancelled, method: method, url: url, reason: "the request was cancelled")
    }

    static func setup(method: String, url: String, reason: String) -> Self {
        Self(code: .setup, method: method, url: url, reason: reason)
    }

    static func shutDown(method: String, url: String) -> Self {
        Self(code: .shutDown, method: method, url: url, reason: "the HTTP client was shut down")
    }

    static func responseTooLarge(method: String, url: String, limit: Int) -> Self {
        Self(code: .responseTooLarge, method: method, url: url, reason: "the response body is larger than \(limit) bytes")
    }

    /// The server was never reached (its name did not resolve, or the connection was refused):
    /// the request was not sent, so sending it again cannot do anything twice.
    public var isConnectFailure: Bool {
        // CURLE_COULDNT_RESOLVE_PROXY 5, CURLE_COULDNT_RESOLVE_HOST 6, CURLE_COULDNT_CONNECT 7.
        if case .transport(let curlCode) = code { return (5...7).contains(curlCode) }
        return false
    }

    /// The body passed the request's `maxResponseBytes`.
    public var isResponseTooLarge: Bool { code == .responseTooLarge }
    public var isTimeout: Bool { code == .timedOut }
    public var isCancellation: Bool { code == .cancelled }

    public var description: String {
        let hint: String
        switch code {
        case .timedOut: hint = " (raise the timeout, or check that the server answers)"
        case .transport: hint = " (check that the URL is right and the server is reachable)"
        case .cancelled, .setup, .shutDown, .responseTooLarge: hint = ""
        }
        // Never the URL's credentials (user information, a query's key): errors end up in logs.
        return "\(method) \(URLCredentials.redacted(url)) failed: \(reason)\(hint)"
    }
}

import WorkerJSON

/// One outbound HTTP request, as the libcurl client sends it.
public struct HTTPClientRequest: Sendable {
    public var method: String
    public var url: String
    public var headers: [(name: String, value: String)]
    public var body: [UInt8]?
    /// Time allowed to establish the connection.
    public var connectTimeout: Duration
    /// Time allowed for the whole transfer, body included; nil waits for ever (long streams).
    public var timeout: Duration?
    /// Abort when no byte arrives for this long (a stalled stream); nil never does.
    public var lowSpeedTimeout: Duration?
    /// The largest body `execute` collects; a longer one aborts the transfer with an error
    /// (`HTTPClientError.isResponseTooLarge`) instead of filling memory. Nil takes any size.
    public var maxResponseBytes: Int?

    public init(
        method: String = "GET", url: String, headers: [(name: String, value: String)] = [],
        body: [UInt8]? = nil, connectTimeout: Duration = .seconds(10), timeout: Duration? = .seconds(60)
    ) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
        self.connectTimeout = connectTimeout
        self.timeout = timeout
    }

    /// A request with a JSON body and `Content-Type: application/json`.
    public static func json(
        _ method: String = "POST", url: String, body: JSONValue, headers: [(name: String, value: String)] = [],
        timeout: Duration? = .seconds(60)
    ) throws(JSONError) -> HTTPClientRequest {
        HTTPClientRequest(
            method: method, url: url, headers: [("Content-Type", "application/json")] + headers,
            body: try body.serialized(), timeout: timeout)
    }
}

/// The head of a response: status line and headers.
public struct HTTPClientResponseHead: Sendable {
    public var status: Int
    public var headers: [(name: String, value: String)]

    /// The first header of that name, compared case-insensitively.
    public func header(_ name: String) -> String? {
        let lower = name.lowercased()
        return headers.first { $0.name.lowercased() == lower }?.value
    }
}

/// A response whose body has been read in full.
public struct HTTPClientResponse: Sendable {
    public var head: HTTPClientResponseHead
    public var body: [UInt8]

    public var status: Int { head.status }
    public func header(_ name: String) -> String? { head.header(name) }
    public var text: String { String(decoding: body, as: UTF8.self) }
}

/// A response whose body arrives as it is received (server-sent events, long outputs).
public struct HTTPClientStreamingResponse: Sendable {
    public var head: HTTPClientResponseHead
    public var body: HTTPClientBody
}

import CurlHTTP

/// An endpoint to send jobs to: RunPod's (`https://api.runpod.ai/v2/{id}`) or any server that
/// speaks its endpoint API (`http://host:port/v2/{id}` for a worker in `--local` or
/// load-balancing mode). Named by its base URL; the key goes as `Authorization: Bearer`. Errors
/// and logs show the URL without its credentials (`description`).
public struct Endpoint: Sendable, Equatable, CustomStringConvertible {
    /// Without a trailing slash: `https://api.runpod.ai/v2/abc123`.
    public let baseURL: String
    public let apiKey: String?

    /// `baseURL`, or a bare endpoint id (`abc123`), which names RunPod's API.
    public init(_ baseURL: String, apiKey: String?) throws(EndpointClientError) {
        var url = baseURL.trimmingSpaces()
        let shown = URLCredentials.redacted(url)
        guard !url.isEmpty else { throw .invalidEndpoint(shown, "it is empty") }
        if !url.contains("/") {
            guard url.utf8.allSatisfy({ Self.isIDCharacter($0) }) else {
                throw .invalidEndpoint(shown, "an endpoint id is letters, digits, - and _")
            }
            url = "https://api.runpod.ai/v2/" + url
        }
        guard url.hasPrefix("http://") || url.hasPrefix("https://"), !url.contains(" "), !url.contains("?") else {
            throw .invalidEndpoint(shown, "expected https://api.runpod.ai/v2/<id>, http://host:port/v2/<id> or an endpoint id")
        }
        while url.hasSuffix("/") { url.removeLast() }
        self.baseURL = url
        self.apiKey = apiKey.flatMap { $0.isEmpty ? nil : $0 }
    }

    /// The endpoint named by `variable` (a URL or an id), with `ENDPOINT_API_KEY` (set for these
    /// endpoints, it goes wherever they are); without it, `RUNPOD_API_KEY`, but only to RunPod's
    /// own API over HTTPS (`URLCredentials.mayReceiveRunPodKey`): the account's key never goes to
    /// another host, nor over plain HTTP. Nil when the variable is unset.
    public static func fromEnvironment(_ env: [String: String], variable: String) throws(EndpointClientError) -> Endpoint? {
        guard let raw = env[variable], !raw.isEmpty else { return nil }
        let explicit = env["ENDPOINT_API_KEY"].flatMap { $0.isEmpty ? nil : $0 }
        do {
            let url = try Endpoint(raw, apiKey: nil).baseURL
            let key = explicit ?? (URLCredentials.mayReceiveRunPodKey(url) ? env["RUNPOD_API_KEY"] : nil)
            return try Endpoint(raw, apiKey: key)
        } catch {
            throw .invalidEndpoint("\(variable)=\(URLCredentials.redacted(raw))", error.reason)
        }
    }

    /// For errors and logs: the base URL without credentials (never the key, nor a password in
    /// the URL).
    public var description: String { URLCredentials.redacted(baseURL) }

    private static func isIDCharacter(_ byte: UInt8) -> Bool {
        let lower = byte | 0x20
        return (lower >= 0x61 && lower <= 0x7A) || (byte >= 0x30 && byte <= 0x39) || byte == 0x2D || byte == 0x5F
    }
}

import CurlHTTP
import ExtrasBase64

/// The calls this feature makes to the authorization server, behind a protocol so the verifier
/// is tested without sockets.
package protocol IssuerHTTP: Sendable {
    /// A GET of a JSON document: the status and the body, at most `maxBytes`.
    func get(_ url: String, timeout: Duration, maxBytes: Int) async throws -> (status: Int, body: [UInt8])
    /// A POST of a form (`application/x-www-form-urlencoded`), with HTTP Basic credentials when given.
    func postForm(
        _ url: String, fields: [(String, String)], basic: (user: String, password: String)?, timeout: Duration, maxBytes: Int
    ) async throws -> (status: Int, body: [UInt8])
}

/// `IssuerHTTP` on the worker's libcurl client.
package struct CurlIssuerHTTP: IssuerHTTP {
    let client: CurlHTTPClient

    package init(client: CurlHTTPClient) {
        self.client = client
    }

    package func get(_ url: String, timeout: Duration, maxBytes: Int) async throws -> (status: Int, body: [UInt8]) {
        var request = HTTPClientRequest(url: url, headers: [("Accept", "application/json")], connectTimeout: timeout, timeout: timeout)
        request.maxResponseBytes = maxBytes
        let response = try await client.execute(request)
        return (response.status, response.body)
    }

    package func postForm(
        _ url: String, fields: [(String, String)], basic: (user: String, password: String)?, timeout: Duration, maxBytes: Int
    ) async throws -> (status: Int, body: [UInt8]) {
        var headers: [(name: String, value: String)] = [("Accept", "application/json"), ("Content-Type", "application/x-www-form-urlencoded")]
        if let basic { headers.append(("Authorization", BasicCredentials.header(user: basic.user, password: basic.password))) }
        let body = fields.map { "\(PercentEncoding.encode($0.0))=\(PercentEncoding.encode($0.1))" }.joined(separator: "&")
        var request = HTTPClientRequest(
            method: "POST", url: url, headers: headers, body: Array(body.utf8), connectTimeout: timeout, timeout: timeout)
        request.maxResponseBytes = maxBytes
        let response = try await client.execute(request)
        return (response.status, response.body)
    }
}

/// HTTP Basic credentials as OAuth clients send them (RFC 6749 §2.3.1: each part form-encoded first).
enum BasicCredentials {
    static func header(user: String, password: String) -> String {
        let pair = PercentEncoding.encode(user) + ":" + PercentEncoding.encode(password)
        return "Basic " + Base64.encodeToString(bytes: Array(pair.utf8))
    }
}

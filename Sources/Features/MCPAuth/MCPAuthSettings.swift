#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import WorkerRuntime

/// What MCP authorization reads, once, at start-up (docs/mcp.md, "Authorization"): who issues
/// tokens, which resource they must name, and the scopes asked for. Built from a dictionary in
/// tests (`MCPAuthSettings.read`).
package struct MCPAuthSettings: Sendable, Equatable {
    /// `MCP_AUTH_ISSUER`: the authorization server, as its metadata and its tokens name it.
    package var issuer: String
    /// `MCP_RESOURCE_URL`: this server's canonical MCP URL; a token's `aud` must contain it (RFC 8707).
    package var resource: String
    /// `MCP_AUTH_SCOPES`: needed for every request to `/mcp`.
    package var requiredScopes: [String] = []
    /// `MCP_TOOL_SCOPES`: per tool, replacing what the tool declares.
    package var toolScopes: [String: [String]] = [:]
    /// `MCP_AUTH_INTROSPECTION_URL`: RFC 7662, for tokens that are not JWTs (else the issuer's metadata's).
    package var introspectionURL: String?
    /// `MCP_AUTH_CLIENT_ID` and `MCP_AUTH_CLIENT_SECRET`: this server's credentials at the introspection endpoint.
    package var clientID: String?
    package var clientSecret: String?
    /// `MCP_AUTH_LEEWAY_SECONDS`: clock skew allowed on `exp` and `nbf`.
    package var leeway: Duration = .seconds(60)
    /// `MCP_AUTH_JWKS_REFETCH_SECONDS`: an unknown `kid` refetches the issuer's keys at most this often.
    package var refetchInterval: Duration = .seconds(30)
    /// Keys older than this are refetched on the next call (they are kept if the issuer is down).
    package var keysMaxAge: Duration = .seconds(3600)
    /// Tokens longer than this are refused unread (real access tokens are 1–2 kB).
    package var maxTokenBytes = 8192
    /// How long one call to the issuer (metadata, keys, introspection) may take.
    package var issuerTimeout: Duration = .seconds(5)

    package init(issuer: String, resource: String) {
        self.issuer = issuer
        self.resource = resource
    }

    /// Every variable this feature reads; any of them without `MCP_AUTH_ISSUER` is refused.
    static let variables = [
        "MCP_RESOURCE_URL", "MCP_AUTH_SCOPES", "MCP_TOOL_SCOPES", "MCP_AUTH_INTROSPECTION_URL", "MCP_AUTH_CLIENT_ID",
        "MCP_AUTH_CLIENT_SECRET", "MCP_AUTH_LEEWAY_SECONDS", "MCP_AUTH_JWKS_REFETCH_SECONDS",
    ]

    /// nil without `MCP_AUTH_ISSUER`; a `ConfigurationError` naming the variable for any bad value.
    /// `tools` are the worker's tool names (`MCP_TOOL_SCOPES` may name only those).
    package static func read(_ environment: EnvironmentReader, tools: [String]) throws(ConfigurationError) -> MCPAuthSettings? {
        // A misspelt setting would leave authorization off, or weaker, without a word.
        let known = Set(variables + ["MCP_AUTH_ISSUER"])
        for name in environment.environment.keys.sorted() where name.hasPrefix("MCP_AUTH_") && !known.contains(name) {
            throw .invalidValue(
                name, "(set)", expected: "no such setting: MCP authorization reads \(known.filter { $0.hasPrefix("MCP_AUTH_") }.sorted().joined(separator: ", ")) (docs/mcp.md)")
        }
        guard let issuer = environment.string("MCP_AUTH_ISSUER") else {
            for name in variables {
                if let value = environment.string(name) {
                    let shown = name == "MCP_AUTH_CLIENT_SECRET" ? "(set)" : value
                    throw .invalidValue(
                        name, shown, expected: "nothing without MCP_AUTH_ISSUER: it is an MCP authorization setting (docs/mcp.md); set MCP_AUTH_ISSUER or unset \(name)")
                }
            }
            return nil
        }
        try checkURL(issuer, variable: "MCP_AUTH_ISSUER", what: "the authorization server's issuer URL, such as https://auth.example.com/realms/tools")
        guard let resource = environment.string("MCP_RESOURCE_URL") else {
            throw .invalidValue(
                "MCP_RESOURCE_URL", "", expected: "this server's MCP URL as clients reach it, such as https://memory.example.com/mcp: tokens must be issued for it")
        }
        try checkURL(resource, variable: "MCP_RESOURCE_URL", what: "this server's MCP URL as clients reach it, such as https://memory.example.com/mcp")
        var settings = MCPAuthSettings(issuer: issuer, resource: resource)
        if let scopes = environment.string("MCP_AUTH_SCOPES") {
            settings.requiredScopes = try Self.scopes(scopes, variable: "MCP_AUTH_SCOPES")
        }
        if let raw = environment.string("MCP_TOOL_SCOPES") {
            settings.toolScopes = try toolScopes(raw, tools: tools)
        }
        if let url = environment.string("MCP_AUTH_INTROSPECTION_URL") {
            try checkURL(url, variable: "MCP_AUTH_INTROSPECTION_URL", what: "the authorization server's RFC 7662 introspection endpoint")
            settings.introspectionURL = url
        }
        settings.clientID = environment.string("MCP_AUTH_CLIENT_ID")
        settings.clientSecret = environment.string("MCP_AUTH_CLIENT_SECRET")
        if (settings.clientID == nil) != (settings.clientSecret == nil) {
            let missing = settings.clientID == nil ? "MCP_AUTH_CLIENT_ID" : "MCP_AUTH_CLIENT_SECRET"
            throw .invalidValue(missing, "", expected: "set together with \(missing == "MCP_AUTH_CLIENT_ID" ? "MCP_AUTH_CLIENT_SECRET" : "MCP_AUTH_CLIENT_ID"): the credentials this server presents to the introspection endpoint")
        }
        if let clientID = settings.clientID, clientID.contains(":") {
            throw .invalidValue("MCP_AUTH_CLIENT_ID", clientID, expected: "a client id without ':' (HTTP Basic authentication cannot carry one)")
        }
        if let leeway = try environment.seconds("MCP_AUTH_LEEWAY_SECONDS", in: 0...300) { settings.leeway = leeway }
        if let interval = try environment.seconds("MCP_AUTH_JWKS_REFETCH_SECONDS", in: 1...3600) { settings.refetchInterval = interval }
        return settings
    }

    /// An https URL, or http on a loopback host (a local authorization server while developing):
    /// a token checked against keys fetched in clear text from another machine proves nothing.
    static func checkURL(_ url: String, variable: String, what: String) throws(ConfigurationError) {
        try EnvironmentReader.checkHTTPURL(url, variable: variable, original: url, example: nil)
        guard let parsed = URL(string: url) else { throw .invalidValue(variable, url, expected: what) }
        if parsed.fragment != nil { throw .invalidValue(variable, url, expected: "\(what), without a #fragment") }
        if parsed.user != nil || parsed.password != nil { throw .invalidValue(variable, url, expected: "\(what), without user:password@") }
        if variable == "MCP_AUTH_ISSUER", parsed.query != nil {
            throw .invalidValue(variable, url, expected: "\(what), without a ?query (RFC 8414 §2: an issuer has none)")
        }
        if parsed.scheme?.lowercased() == "http", !isLoopback(parsed.host ?? "") {
            throw .invalidValue(variable, url, expected: "an https:// URL (http:// only on a loopback host such as 127.0.0.1): \(what)")
        }
    }

    /// `localhost`, `::1`, or an IPv4 address in 127.0.0.0/8 written as one (`127.evil.com` is a
    /// name); a URL's host, so in any case.
    static func isLoopback(_ host: String) -> Bool { isLoopbackHost(host.lowercased()) }

    /// Scope names separated by spaces or commas (RFC 6749's scope-token characters).
    static func scopes(_ raw: String, variable: String) throws(ConfigurationError) -> [String] {
        let names = raw.split(whereSeparator: { $0 == " " || $0 == "," }).map(String.init)
        if names.isEmpty, variable == "MCP_AUTH_SCOPES" {
            throw .invalidValue(variable, raw, expected: "scope names separated by spaces or commas (this names none; unset it to require none)")
        }
        for name in names where !isScopeToken(name) {
            throw .invalidValue(variable, raw, expected: "scope names of printable ASCII without spaces, quotes or backslashes, separated by spaces or commas ('\(name)' is not one)")
        }
        return names
    }

    static func isScopeToken(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.allSatisfy { $0 == 0x21 || (0x23...0x5B).contains($0) || (0x5D...0x7E).contains($0) }
    }

    /// `tool=scope scope;tool2=scope`: every tool named must exist.
    static func toolScopes(_ raw: String, tools: [String]) throws(ConfigurationError) -> [String: [String]] {
        var result: [String: [String]] = [:]
        for entry in raw.split(separator: ";") {
            let parts = entry.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).map { String($0.drop { $0 == " " }.reversed().drop { $0 == " " }.reversed()) }
            guard parts.count == 2, !parts[0].isEmpty else {
                throw .invalidValue("MCP_TOOL_SCOPES", raw, expected: "tool=scope scope;tool2=scope (the entry '\(entry)' has no '=')")
            }
            guard tools.contains(parts[0]) else {
                throw .invalidValue("MCP_TOOL_SCOPES", raw, expected: "names of this worker's tools (\(tools.joined(separator: ", "))); '\(parts[0])' is not one")
            }
            guard result[parts[0]] == nil else {
                throw .invalidValue("MCP_TOOL_SCOPES", raw, expected: "each tool named once ('\(parts[0])' is named twice)")
            }
            result[parts[0]] = try scopes(parts[1], variable: "MCP_TOOL_SCOPES")
        }
        return result
    }

    /// The scopes a call of `tool` needs beside `requiredScopes`: the setting's, else the tool's own.
    package func scopes(forTool tool: String, declared: [String]) -> [String] {
        toolScopes[tool] ?? declared
    }
}

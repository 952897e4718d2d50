import Logging

/// The issuer's metadata and keys, fetched when `KeyRefreshPolicy` says so, one fetch at a time
/// however many requests wait for it.
package actor IssuerKeyCache {
    private let settings: MCPAuthSettings
    private let http: any IssuerHTTP
    private let logger: Logger
    private let policy: KeyRefreshPolicy
    private var metadata: IssuerMetadata?
    private var keys: IssuerKeys?
    private var state = KeyRefreshPolicy.State()
    private var lastError: AuthRefusal?
    private var fetching: Task<Void, Never>?

    package init(settings: MCPAuthSettings, http: any IssuerHTTP, logger: Logger) {
        self.settings = settings
        self.http = http
        self.logger = logger
        self.policy = KeyRefreshPolicy(refetchInterval: settings.refetchInterval, maxAge: settings.keysMaxAge)
    }

    /// The keys to verify a token naming `kid` with; refusals say why there are none.
    /// `kid` "" is a token that names no key: the issuer's only key verifies it.
    package func keys(for kid: String) async throws(AuthRefusal) -> IssuerKeys {
        switch policy.decide(state, keyKnown: keys?.knows(kid) == true, now: .now) {
        case .use:
            if let keys { return keys }
        case .useAndRefresh:
            if fetching == nil { Task { await self.fetchOnce() } }
            if let keys { return keys }
        case .unknownKey:
            throw unknown(kid)
        case .unavailable:
            throw lastError ?? .unavailable("the authorization server's keys could not be fetched")
        case .fetch:
            await fetchOnce()
        }
        if let keys, keys.knows(kid) { return keys }
        if keys == nil { throw lastError ?? .unavailable("the authorization server's keys could not be fetched") }
        throw unknown(kid)
    }

    /// The introspection endpoint: the setting's, else the metadata's when this server has
    /// credentials to present there (RFC 7662 endpoints refuse anonymous callers, and every junk
    /// token would otherwise become a call to the issuer and a 503 instead of a 401).
    package func introspectionEndpoint() async throws(AuthRefusal) -> String? {
        if let url = settings.introspectionURL { return url }
        guard settings.clientID != nil else { return nil }
        if metadata == nil { metadata = try await discover() }
        return metadata?.introspectionEndpoint
    }

    /// The issuer as its metadata spells it (tokens carry that spelling), once discovered.
    package var canonicalIssuer: String? { metadata?.issuer }

    /// Fetches at start-up, so a misconfigured issuer shows in the log before the first client.
    package func warm() async {
        await fetchOnce()
        if let keys {
            logger.info("MCP authorization: \(keys.keys.count) signing key(s) from \(metadata?.jwksURI ?? "the issuer")")
        }
        if settings.introspectionURL == nil, settings.clientID == nil, metadata?.introspectionEndpoint != nil {
            logger.info(
                "MCP authorization: the issuer offers introspection, unused without MCP_AUTH_CLIENT_ID and MCP_AUTH_CLIENT_SECRET: only JWT access tokens are accepted")
        }
    }

    private func unknown(_ kid: String) -> AuthRefusal {
        let stale = state.lastAttemptFailed ? " (the keys could not be fetched again: \(lastError?.message ?? "the issuer failed"))" : ""
        return kid.isEmpty
            ? .invalidToken("the token names no signing key (kid) and the issuer publishes several\(stale)")
            : .invalidToken("the token's signing key '\(kid)' is not among the issuer's published keys\(stale)")
    }

    private func fetchOnce() async {
        if let fetching { return await fetching.value }
        let task = Task { await self.fetch() }
        fetching = task
        await task.value
        fetching = nil
    }

    private func fetch() async {
        state.lastAttempt = .now
        do throws(AuthRefusal) {
            if metadata == nil { metadata = try await discover() }
            guard let metadata else { return }
            let (status, body) = try await call(metadata.jwksURI)
            guard status == 200 else {
                // The metadata may be stale (a moved JWKS): read it again next time.
                self.metadata = nil
                throw AuthRefusal.unavailable("the issuer's JWKS at \(metadata.jwksURI) answered HTTP \(status)")
            }
            let fetched = try await IssuerKeys.parse(body, from: metadata.jwksURI)
            for reason in fetched.skipped { logger.warning("MCP authorization: a key of the issuer's JWKS is not used: \(reason)") }
            keys = fetched
            state.hasKeys = true
            state.fetchedAt = .now
            state.lastAttemptFailed = false
            lastError = nil
        } catch {
            state.lastAttemptFailed = true
            lastError = error
            logger.warning("MCP authorization: \(error.message)\(keys == nil ? "" : "; the keys fetched before stay in use")")
        }
    }

    /// Tries the discovery URLs in turn, all of them within one `issuerTimeout` (a slow issuer
    /// would otherwise hold a request for one timeout per URL).
    private func discover() async throws(AuthRefusal) -> IssuerMetadata {
        var problems: [String] = []
        let deadline = ContinuousClock.now + settings.issuerTimeout
        for url in IssuerMetadata.discoveryURLs(issuer: settings.issuer) {
            let left = deadline - .now
            guard left > .milliseconds(50) else {
                problems.append("no time left within \(settings.issuerTimeout) for \(url)")
                break
            }
            let status: Int
            let body: [UInt8]
            do {
                (status, body) = try await call(url, timeout: left)
            } catch {
                problems.append(error.message)
                continue
            }
            guard status == 200 else {
                problems.append("\(url): HTTP \(status)")
                continue
            }
            return try IssuerMetadata.parse(body, expectedIssuer: settings.issuer, from: url)
        }
        throw .unavailable(
            "no authorization server metadata found for MCP_AUTH_ISSUER \(settings.issuer) (RFC 8414 or OpenID discovery): \(problems.joined(separator: "; "))")
    }

    private func call(_ url: String, timeout: Duration? = nil) async throws(AuthRefusal) -> (Int, [UInt8]) {
        do {
            return try await http.get(url, timeout: timeout ?? settings.issuerTimeout, maxBytes: 1 << 20)
        } catch {
            throw .unavailable("the authorization server could not be reached at \(url): \(error)")
        }
    }
}

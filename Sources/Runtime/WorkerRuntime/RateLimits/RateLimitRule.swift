/// A request budget: at most `limit` requests per client in each `window` (fixed windows that
/// start at a client's first request). Read from `RATE_LIMIT_<ROUTE>=100/10s` (`s`, `m`, `h`,
/// `ms`; a bare number is seconds).
package struct RateLimitRule: Sendable, Equatable {
    package var limit: Int
    package var window: Duration

    package init(limit: Int, window: Duration) {
        self.limit = limit
        self.window = window
    }

    /// `100/10s`, `5/1m`, `1000/1h`, `20/500ms`, `10/30`; nil when malformed.
    package init?(parsing text: String) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let limit = Int(trimmed(String(parts[0]))), limit > 0 else { return nil }
        var window = trimmed(String(parts[1]))
        var unit: Int64 = 1000
        for (suffix, milliseconds) in [("ms", Int64(1)), ("s", 1000), ("m", 60_000), ("h", 3_600_000)] where window.hasSuffix(suffix) {
            window = String(window.dropLast(suffix.count))
            unit = milliseconds
            break
        }
        guard let count = Int64(window.isEmpty ? "1" : window), count > 0, count <= 86_400_000 / unit * 7 else { return nil }
        self.init(limit: limit, window: .milliseconds(count * unit))
    }
}

/// The routes of the HTTP modes that take a budget of their own; `RATE_LIMIT_DEFAULT` covers the
/// ones without. The health check is never limited: the load balancer must always reach it.
package enum RateLimitedRoute: String, Sendable, CaseIterable {
    case run, runsync, status, stream, cancel, retry, purgeQueue = "purge_queue", health, openai, mcp, metrics

    /// The environment variable that sets its budget.
    package var variable: String { "RATE_LIMIT_" + rawValue.uppercased() }

    /// The route a request path belongs to (`/v2/{id}/` prefixes removed); nil for paths that are
    /// not limited.
    package static func of(path: String) -> RateLimitedRoute? {
        var segments = path.split(separator: "/", maxSplits: 3)
        if segments.count >= 2, segments[0] == "v2" { segments.removeFirst(2) }
        switch segments.first {
        case "run": return .run
        case "runsync": return .runsync
        case "status", "status-sync": return .status
        case "stream": return .stream
        case "cancel": return .cancel
        case "retry": return .retry
        case "purge-queue": return .purgeQueue
        case "health": return .health
        case "openai": return .openai
        case "mcp": return .mcp
        case "metrics": return .metrics
        default: return nil
        }
    }
}

/// Budgets by route, off unless set.
package struct RateLimits: Sendable, Equatable {
    package var routes: [RateLimitedRoute: RateLimitRule] = [:]
    /// For routes with no budget of their own (`RATE_LIMIT_DEFAULT`).
    package var fallback: RateLimitRule?

    package init(routes: [RateLimitedRoute: RateLimitRule] = [:], fallback: RateLimitRule? = nil) {
        self.routes = routes
        self.fallback = fallback
    }

    package var isEmpty: Bool { routes.isEmpty && fallback == nil }

    package func rule(for route: RateLimitedRoute) -> RateLimitRule? { routes[route] ?? fallback }
}

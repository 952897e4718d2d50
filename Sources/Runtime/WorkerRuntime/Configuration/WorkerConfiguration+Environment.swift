#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Logging

extension WorkerConfiguration {
    /// Reads and validates the environment; the error names the offending variable.
    package static func fromEnvironment(
        _ env: [String: String] = ProcessInfo.processInfo.environment
    ) throws(ConfigurationError) -> WorkerConfiguration {
        let reader = EnvironmentReader(env)
        func value(_ name: String) -> String? { reader.string(name) }
        func positiveSeconds(_ name: String) throws(ConfigurationError) -> Duration? {
            // Bounded: a duration past Int64 milliseconds would trap instead of being refused.
            try reader.seconds(name, in: 0.001...31_536_000, expected: "a positive number of seconds, at most 31536000 (a year)")
        }
        var config = WorkerConfiguration()
        let podID = value("RUNPOD_POD_ID")
        config.podIDIsSet = podID != nil
        config.workerID = podID ?? UUID().uuidString.lowercased()
        config.podHostname = value("RUNPOD_POD_HOSTNAME") ?? "unknown"
        config.apiKey = value("RUNPOD_AI_API_KEY")
        config.endpointID = value("RUNPOD_ENDPOINT_ID")

        if let interval = value("RUNPOD_PING_INTERVAL") {
            guard let ms = Int(interval), ms > 0 else {
                throw .invalidValue("RUNPOD_PING_INTERVAL", interval, expected: "a positive number of milliseconds")
            }
            config.pingInterval = .milliseconds(ms)
        }
        if let count = try reader.whole("WORKER_CONCURRENCY", in: 1...10_000) { config.concurrency = count }
        let levelVariable = env["RUNPOD_LOG_LEVEL"] != nil ? "RUNPOD_LOG_LEVEL" : "RUNPOD_DEBUG_LEVEL"
        if let level = value(levelVariable) {
            guard let parsed = Logger.Level(runpodName: level) else {
                throw .invalidValue(
                    levelVariable, level, expected: "one of NOTSET, TRACE, DEBUG, INFO, WARN, WARNING, ERROR or 0-5")
            }
            config.logLevel = parsed
        }

        if let base = value("OPENAI_BASE_URL") {
            try EnvironmentReader.checkHTTPURL(base, variable: "OPENAI_BASE_URL", original: base)
            var openAI = OpenAIConfiguration(baseURL: base, apiKey: value("OPENAI_API_KEY"))
            if let seconds = try positiveSeconds("OPENAI_TIMEOUT") { openAI.timeout = seconds }
            if let seconds = try positiveSeconds("OPENAI_IDLE_TIMEOUT") { openAI.idleTimeout = seconds }
            config.openAI = openAI
        }
        config.port = try port(value("PORT"), "PORT")
        config.healthPort = try port(value("PORT_HEALTH"), "PORT_HEALTH")
        if let path = value("HEALTH_CHECK_PATH") {
            guard path.hasPrefix("/"), !path.contains(" "), !path.contains("?") else {
                throw .invalidValue("HEALTH_CHECK_PATH", path, expected: "a path starting with /, such as /ping")
            }
            config.healthCheckPath = path
        }
        config.serverAPIKey = value("RUNPOD_API_KEY") ?? value("API_KEY")
        if let seconds = try positiveSeconds("WORKER_RESULT_RETRY_SECONDS") {
            config.timings.resultRetryBudget = seconds
        }
        if let seconds = try positiveSeconds("WORKER_DELIVERY_GRACE_SECONDS") {
            config.timings.deliveryGrace = seconds
        }
        if let seconds = try positiveSeconds("HTTP_IDLE_TIMEOUT") { config.limits.idleTimeout = seconds }
        if let count = try reader.whole("HTTP_MAX_CONNECTIONS", in: 1...1_000_000) {
            config.limits.maxConnections = count
        }
        if let megabytes = try reader.whole("QUEUED_INPUT_MB", in: 1...1_000_000) {
            config.limits.queuedInputBytes = megabytes << 20
        }
        if let megabytes = try reader.whole("RETAINED_RESULTS_MB", in: 1...1_000_000) {
            config.limits.retainedResultBytes = megabytes << 20
        }
        if let seconds = try positiveSeconds("LOCAL_RESULT_RETENTION") {
            config.limits.retention = seconds
        }

        config.mcp.allowedHosts = try patterns(value("MCP_ALLOWED_HOSTS"), "MCP_ALLOWED_HOSTS", origins: false)
        config.mcp.allowedOrigins = try patterns(value("MCP_ALLOWED_ORIGINS"), "MCP_ALLOWED_ORIGINS", origins: true)
        func rule(_ variable: String) throws(ConfigurationError) -> RateLimitRule? {
            guard let raw = value(variable) else { return nil }
            guard let rule = RateLimitRule(parsing: raw) else {
                throw .invalidValue(variable, raw, expected: "requests/window, such as 100/10s, 5/1m or 20/500ms")
            }
            return rule
        }
        for route in RateLimitedRoute.allCases {
            if let rule = try rule(route.variable) { config.rateLimits.routes[route] = rule }
        }
        config.rateLimits.fallback = try rule("RATE_LIMIT_DEFAULT")

        if let take = value("RUNPOD_WEBHOOK_GET_JOB") {
            let worker = config.workerID
            let jobTake = take.replacing("$ID", with: worker)
            try EnvironmentReader.checkHTTPURL(jobTake, variable: "RUNPOD_WEBHOOK_GET_JOB", original: take)
            func template(_ name: String) throws(ConfigurationError) -> String {
                guard let raw = value(name) else {
                    throw .invalidValue(name, "", expected: "a URL template; it is required when RUNPOD_WEBHOOK_GET_JOB is set")
                }
                let url = raw.replacing("$RUNPOD_POD_ID", with: worker)
                try EnvironmentReader.checkHTTPURL(url.replacing("$ID", with: "job"), variable: name, original: raw)
                return url
            }
            let ping = try value("RUNPOD_WEBHOOK_PING").map { raw throws(ConfigurationError) -> String in
                let url = raw.replacing("$RUNPOD_POD_ID", with: worker)
                try EnvironmentReader.checkHTTPURL(url, variable: "RUNPOD_WEBHOOK_PING", original: raw)
                return url
            }
            config.platform = PlatformEndpoints(
                jobTake: jobTake,
                jobDone: try template("RUNPOD_WEBHOOK_POST_OUTPUT"),
                jobStream: try template("RUNPOD_WEBHOOK_POST_STREAM"),
                ping: ping)
        }
        return config
    }

    /// A comma-separated list of host names, `*.suffix` patterns or `*` (and, for origins, whole
    /// `scheme://host[:port]` origins), lower-cased.
    private static func patterns(_ raw: String?, _ variable: String, origins: Bool) throws(ConfigurationError) -> [String] {
        guard let raw else { return [] }
        var entries: [String] = []
        for part in raw.split(separator: ",") {
            let entry = trimmed(String(part)).lowercased()
            guard !entry.isEmpty else { continue }
            var hostPart = entry
            if origins, let marker = entry.firstRange(of: "://") {
                // A whole origin: a scheme and a host (with an optional port), no path.
                let scheme = entry[..<marker.lowerBound]
                hostPart = String(entry[marker.upperBound...])
                if scheme.isEmpty || !scheme.allSatisfy({ $0.isLetter }) || hostPart.contains("/") { hostPart = "" }
            }
            let name = hostPart.hasPrefix("*.") ? String(hostPart.dropFirst(2)) : hostPart
            let valid = entry == "*" || (!name.isEmpty && name.allSatisfy { $0.isLetter || $0.isNumber || "-.:[]_".contains($0) })
            guard valid else {
                throw .invalidValue(
                    variable, raw,
                    expected: "a comma-separated list of host names, *.suffix patterns or *"
                        + (origins ? ", or origins such as https://app.example.com" : ""))
            }
            entries.append(entry)
        }
        return entries
    }

    private static func port(_ raw: String?, _ variable: String) throws(ConfigurationError) -> Int? {
        guard let raw else { return nil }
        guard let port = Int(raw), (0...65535).contains(port) else {
            throw .invalidValue(variable, raw, expected: "a port number from 1 to 65535 (or 0 for any free port)")
        }
        return port
    }

}

/// The value without surrounding spaces and tabs (a stray space in a template is a common slip).
func trimmed(_ value: String) -> String {
    var slice = Substring(value)
    while let first = slice.first, first == " " || first == "\t" { slice.removeFirst() }
    while let last = slice.last, last == " " || last == "\t" { slice.removeLast() }
    return String(slice)
}

extension Logger.Level {
    /// runpod-python's level names and indices, plus WARNING (which it rejects by mistake).
    package init?(runpodName: String) {
        switch runpodName.uppercased() {
        case "NOTSET", "0", "TRACE", "1": self = .trace
        case "DEBUG", "2": self = .debug
        case "INFO", "3": self = .info
        case "WARN", "WARNING", "4": self = .warning
        case "ERROR", "5": self = .error
        default: return nil
        }
    }
}

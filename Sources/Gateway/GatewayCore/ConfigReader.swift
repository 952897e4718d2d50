#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import WorkerJSON

/// Walks a configuration document, collecting every problem with its field's path, so one run
/// of the gateway shows all that is wrong with a file.
struct ConfigReader {
    var problems: [String] = []

    mutating func configuration(_ json: JSONValue, environment: [String: String]) -> GatewayConfiguration? {
        guard let root = json.objectValue else {
            problems.append("the file must hold a JSON object with \"upstreams\" and \"routes\"")
            return nil
        }
        unknown(root, allowed: ["upstreams", "routes", "breaker", "retry_budget", "probe_interval_seconds"], at: "")
        var upstreams: [GatewayConfiguration.Upstream] = []
        if let list = root["upstreams"]?.arrayValue, !list.isEmpty {
            for (index, entry) in list.enumerated() {
                if let upstream = self.upstream(entry, at: "upstreams[\(index)]", environment: environment) { upstreams.append(upstream) }
            }
            var seen: [String: Int] = [:]
            for (index, upstream) in upstreams.enumerated() {
                if let first = seen.updateValue(index, forKey: upstream.name) {
                    problems.append("upstreams[\(index)].name: \"\(upstream.name)\" is also upstreams[\(first)]'s; names must be unique")
                }
            }
        } else {
            problems.append("upstreams: must be a non-empty array of upstreams")
        }
        // Tiers jobs can be routed to: those with an endpoint-API upstream (MCP- and OpenAI-only
        // upstreams take no routed jobs).
        let tiers = Set(upstreams.filter { $0.url != nil }.map(\.tier))
        var routes: [RouteRule] = []
        switch root["routes"] {
        case nil:
            // Every tier with an endpoint-API upstream, in the order the upstreams name them.
            var seen = Set<String>()
            routes = [RouteRule(tiers: upstreams.filter { $0.url != nil }.map(\.tier).filter { seen.insert($0).inserted })]
        case .array(let list)?:
            for (index, entry) in list.enumerated() {
                guard let rule = self.rule(entry, at: "routes[\(index)]", tiers: tiers) else { continue }
                routes.append(rule)
                if rule.isDefault && index < list.count - 1 {
                    problems.append("routes[\(index)]: has no predicate, so the rules after it would never apply; put it last")
                } else if !rule.isDefault && index == list.count - 1 {
                    problems.append("routes[\(index)]: the last rule must have no predicate (tools, when, min_input_bytes, max_input_bytes): it is the default")
                }
            }
            if list.isEmpty { problems.append("routes: must list at least one rule (the last without predicates: the default)") }
        default:
            problems.append("routes: must be an array of rules")
        }
        let breaker = self.breaker(root["breaker"])
        let budget = number(root, "retry_budget", at: "", in: 0...1, default: 0.2, expected: "a share of first calls from 0 to 1")
        let probe = number(root, "probe_interval_seconds", at: "", in: 0.5...300, default: 5, expected: "seconds from 0.5 to 300")
        return GatewayConfiguration(
            upstreams: upstreams, routes: routes, breaker: breaker, retryBudget: budget, probeInterval: .milliseconds(Int64(probe * 1000)))
    }

    private mutating func upstream(_ json: JSONValue, at path: String, environment: [String: String]) -> GatewayConfiguration.Upstream? {
        guard let object = json.objectValue else {
            problems.append("\(path): must be an object")
            return nil
        }
        unknown(
            object,
            allowed: [
                "name", "url", "openai_url", "mcp_url", "models", "tier", "weight", "api_key_env", "max_in_flight", "timeout_seconds", "streams",
            ],
            at: path)
        let count = problems.count
        var name = ""
        if let text = object["name"]?.stringValue,
            (1...64).contains(text.utf8.count),
            text.utf8.allSatisfy({ $0.isASCIIAlphanumeric || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: "-") })
        {
            name = text
        } else {
            problems.append("\(path).name: must be 1 to 64 of A-Z a-z 0-9 _ - (it prefixes the upstream's MCP tools and names it in /v2/{upstream}/)")
        }
        let url = self.url(object, "url", at: path)
        let openAI = self.url(object, "openai_url", at: path)
        let mcp = self.url(object, "mcp_url", at: path)
        if object["url"] == nil && object["openai_url"] == nil && object["mcp_url"] == nil {
            problems.append("\(path): needs at least one of url (endpoint API), openai_url, mcp_url")
        }
        var models: [String] = []
        if let value = object["models"] {
            if let list = value.arrayValue, list.allSatisfy({ !($0.stringValue ?? "").isEmpty }) {
                models = list.compactMap(\.stringValue)
            } else {
                problems.append("\(path).models: must be an array of model names")
            }
        }
        if object["openai_url"] != nil && models.isEmpty {
            problems.append("\(path).models: must list the models openai_url serves (OpenAI requests are routed by model)")
        }
        var tier = "default"
        if let value = object["tier"] {
            if let text = value.stringValue, !text.isEmpty { tier = text } else { problems.append("\(path).tier: must be a non-empty string") }
        }
        var weight = 1.0
        if let value = object["weight"] {
            if let number = value.doubleValue, number > 0, number <= 1_000_000 { weight = number } else {
                problems.append("\(path).weight: must be a number > 0 and at most 1000000, got \(Self.shown(value))")
            }
        }
        var keyVariable: String?
        var key: String?
        if let value = object["api_key_env"] {
            if let variable = value.stringValue, Self.isVariableName(variable) {
                keyVariable = variable
                key = environment[variable]
                if (key ?? "").isEmpty { problems.append("\(path).api_key_env: the variable \(variable) is not set (it must hold the upstream's key)") }
                if let key, key.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) {
                    problems.append("\(path).api_key_env: the variable \(variable) holds a line break or a control character; a key goes into a header")
                }
            } else {
                problems.append("\(path).api_key_env: must be the name of an environment variable, such as RUNPOD_API_KEY")
            }
        }
        let maxInFlight = Int(number(object, "max_in_flight", at: path, in: 1...100_000, default: 256, expected: "a whole number from 1 to 100000", whole: true))
        let timeout = number(object, "timeout_seconds", at: path, in: 0.001...86_400, default: 600, expected: "seconds from 0.001 to 86400")
        var streams = false
        if let value = object["streams"] {
            if let flag = value.boolValue { streams = flag } else { problems.append("\(path).streams: must be true or false") }
        }
        guard problems.count == count else { return nil }
        var upstream = GatewayConfiguration.Upstream(
            name: name, url: url, openAIURL: openAI, mcpURL: mcp, models: models, tier: tier, weight: weight, apiKeyVariable: keyVariable,
            apiKey: key, maxInFlight: maxInFlight, timeout: .milliseconds(Int64(timeout * 1000)))
        upstream.streams = streams
        return upstream
    }

    private mutating func rule(_ json: JSONValue, at path: String, tiers known: Set<String>) -> RouteRule? {
        guard let object = json.objectValue else {
            problems.append("\(path): must be an object")
            return nil
        }
        unknown(object, allowed: ["tools", "when", "min_input_bytes", "max_input_bytes", "tiers"], at: path)
        let count = problems.count
        var rule = RouteRule(tiers: [])
        if let list = object["tiers"]?.arrayValue, !list.isEmpty {
            for (index, value) in list.enumerated() {
                guard let tier = value.stringValue, known.contains(tier) else {
                    problems.append(
                        "\(path).tiers[\(index)]: \(Self.shown(value)) is no tier of an upstream with a url (an endpoint API) (tiers: \(known.sorted().joined(separator: ", ")))")
                    continue
                }
                rule.tiers.append(tier)
            }
        } else {
            problems.append("\(path).tiers: must be a non-empty array of tiers, the first preferred")
        }
        if let value = object["tools"] {
            if let list = value.arrayValue, !list.isEmpty, list.allSatisfy({ !($0.stringValue ?? "").isEmpty }) {
                rule.tools = list.compactMap(\.stringValue)
            } else {
                problems.append("\(path).tools: must be a non-empty array of MCP tool names")
            }
        }
        if let value = object["when"] {
            if let list = value.arrayValue, !list.isEmpty {
                for (index, entry) in list.enumerated() {
                    if let predicate = self.predicate(entry, at: "\(path).when[\(index)]") { rule.predicates.append(predicate) }
                }
            } else {
                problems.append("\(path).when: must be a non-empty array of predicates such as {\"path\": \"input.task\", \"equals\": \"embed\"}")
            }
        }
        for (name, keyPath) in [("min_input_bytes", \RouteRule.minInputBytes), ("max_input_bytes", \RouteRule.maxInputBytes)] {
            guard let value = object[name] else { continue }
            if let bytes = value.intValue, bytes >= 0 { rule[keyPath: keyPath] = bytes } else {
                problems.append("\(path).\(name): must be a whole number of bytes ≥ 0, got \(Self.shown(value))")
            }
        }
        return problems.count == count ? rule : nil
    }

    private mutating func predicate(_ json: JSONValue, at path: String) -> JobPredicate? {
        guard let object = json.objectValue else {
            problems.append("\(path): must be an object such as {\"path\": \"input.task\", \"equals\": \"embed\"}")
            return nil
        }
        let tests = ["equals", "in", "exists", "min", "max", "contains"]
        unknown(object, allowed: ["path"] + tests, at: path)
        guard let text = object["path"]?.stringValue, let jsonPath = JSONPath(text) else {
            problems.append("\(path).path: must be a path into the job such as input.task or input.messages[0].role")
            return nil
        }
        let given = tests.filter { object[$0] != nil }
        guard given.count == 1, let name = given.first, let value = object[name] else {
            problems.append("\(path): needs exactly one test of \(tests.joined(separator: ", ")); has \(given.isEmpty ? "none" : given.joined(separator: ", "))")
            return nil
        }
        let test: JobPredicate.Test
        switch name {
        case "equals": test = .equals(value)
        case "in":
            guard let list = value.arrayValue, !list.isEmpty else {
                problems.append("\(path).in: must be a non-empty array of values")
                return nil
            }
            test = .oneOf(list)
        case "exists":
            guard let flag = value.boolValue else {
                problems.append("\(path).exists: must be true or false")
                return nil
            }
            test = .exists(flag)
        case "contains":
            guard let text = value.stringValue else {
                problems.append("\(path).contains: must be a string")
                return nil
            }
            test = .contains(text)
        default:
            guard let bound = value.doubleValue else {
                problems.append("\(path).\(name): must be a number")
                return nil
            }
            test = name == "min" ? .atLeast(bound) : .atMost(bound)
        }
        return JobPredicate(path: jsonPath, test: test)
    }

    private mutating func breaker(_ json: JSONValue?) -> GatewayConfiguration.BreakerSettings {
        var settings = GatewayConfiguration.BreakerSettings()
        guard let json else { return settings }
        guard let object = json.objectValue else {
            problems.append("breaker: must be an object")
            return settings
        }
        unknown(object, allowed: ["consecutive_failures", "error_rate", "min_calls", "window_seconds", "cooldown_seconds"], at: "breaker")
        settings.consecutiveFailures = Int(number(object, "consecutive_failures", at: "breaker", in: 1...1000, default: 5, expected: "a whole number from 1 to 1000", whole: true))
        settings.errorRate = number(object, "error_rate", at: "breaker", in: 0.01...1, default: 0.5, expected: "a share from 0.01 to 1")
        settings.minimumCalls = Int(number(object, "min_calls", at: "breaker", in: 1...100_000, default: 20, expected: "a whole number from 1 to 100000", whole: true))
        settings.window = .milliseconds(Int64(number(object, "window_seconds", at: "breaker", in: 1...3600, default: 30, expected: "seconds from 1 to 3600") * 1000))
        settings.cooldown = .milliseconds(Int64(number(object, "cooldown_seconds", at: "breaker", in: 0.1...3600, default: 10, expected: "seconds from 0.1 to 3600") * 1000))
        return settings
    }

    // MARK: Fields

    private mutating func unknown(_ object: [String: JSONValue], allowed: [String], at path: String) {
        for key in object.keys.sorted() where !allowed.contains(key) {
            problems.append("\(path.isEmpty ? "" : path + ".")\(key): unknown field (known: \(allowed.joined(separator: ", ")))")
        }
    }

    private mutating func url(_ object: [String: JSONValue], _ name: String, at path: String) -> String? {
        guard let value = object[name] else { return nil }
        guard var text = value.stringValue, let parsed = URL(string: text), let scheme = parsed.scheme?.lowercased(),
            scheme == "http" || scheme == "https", !(parsed.host ?? "").isEmpty,
            !text.unicodeScalars.contains(where: { $0.properties.isWhitespace || $0.value < 0x20 }), parsed.query == nil, parsed.fragment == nil
        else {
            problems.append("\(path).\(name): must be an http:// or https:// URL with a host and without ?query or #fragment, got \(Self.shown(value))")
            return nil
        }
        while text.hasSuffix("/") { text.removeLast() }
        return text
    }

    private mutating func number(
        _ object: [String: JSONValue], _ name: String, at path: String, in range: ClosedRange<Double>, default fallback: Double, expected: String,
        whole: Bool = false
    ) -> Double {
        guard let value = object[name] else { return fallback }
        guard let number = value.doubleValue, range.contains(number), !whole || number.rounded() == number else {
            problems.append("\(path.isEmpty ? "" : path + ".")\(name): must be \(expected), got \(Self.shown(value))")
            return fallback
        }
        return number
    }

    static func shown(_ value: JSONValue) -> String {
        let text = (try? value.jsonString()) ?? "?"
        return text.count > 60 ? String(text.prefix(57)) + "..." : text
    }

    static func isVariableName(_ name: String) -> Bool {
        guard let first = name.utf8.first, first == UInt8(ascii: "_") || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(first) else { return false }
        return name.utf8.allSatisfy { $0 == UInt8(ascii: "_") || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains($0) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }
    }
}

extension UInt8 {
    fileprivate var isASCIIAlphanumeric: Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(self) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(self)
            || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(self)
    }
}

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import WorkerJSON

/// The gateway's configuration (`GATEWAY_CONFIG`, one JSON file; docs/gateway.md): its upstreams,
/// the rules that map a job to tiers, the breaker and retry settings. Read once, at start-up;
/// every problem is reported at once, each naming its field (`upstreams[2].weight`).
package struct GatewayConfiguration: Sendable, Equatable {
    package var upstreams: [Upstream]
    package var routes: [RouteRule]
    package var breaker: BreakerSettings
    /// Extra calls allowed for fallbacks, as a share of first calls (`retry_budget`, 0.2).
    package var retryBudget: Double
    /// How often each upstream's health is asked for (`probe_interval_seconds`).
    package var probeInterval: Duration

    package struct Upstream: Sendable, Equatable {
        /// Also the prefix of its MCP tools and the `{upstream}` of `/v2/{upstream}/…`.
        package var name: String
        /// An endpoint-API base: `https://api.runpod.ai/v2/<id>`, a fleet gateway, a `--local`'s `/v2/<id>`.
        package var url: String?
        /// An OpenAI-compatible base (a vLLM worker's `/openai/v1`).
        package var openAIURL: String?
        package var mcpURL: String?
        /// The models `openAIURL` serves.
        package var models: [String]
        package var tier: String
        package var weight: Double
        /// The variable holding its key, and the key itself as read at start-up.
        package var apiKeyVariable: String?
        package var apiKey: String?
        /// Calls under way at most (`max_in_flight`).
        package var maxInFlight: Int
        /// The longest one call may take (`timeout_seconds`).
        package var timeout: Duration
        /// Its jobs stream (generator handlers, token streams): their chunks are passed on as they
        /// come (`streams`), through `/run` and `/stream`, instead of whole with the result.
        package var streams = false
    }

    /// Wall-clock-free breaker settings (`breaker`).
    package struct BreakerSettings: Sendable, Equatable {
        /// Failures in a row that open it (`consecutive_failures`, 5).
        package var consecutiveFailures = 5
        /// The share of failed calls over `window` that opens it (`error_rate`, 0.5)...
        package var errorRate = 0.5
        /// ...once at least `minimumCalls` were made in it (`min_calls`, 20).
        package var minimumCalls = 20
        package var window: Duration = .seconds(30)
        /// Open this long before a probe may close it (`cooldown_seconds`, 10).
        package var cooldown: Duration = .seconds(10)

        package init() {}
    }

    /// Every tier named by an upstream, in the order they first appear.
    package var tiers: [String] {
        var seen = Set<String>()
        return upstreams.map(\.tier).filter { seen.insert($0).inserted }
    }
}

/// Every problem of a configuration, each naming its field.
package struct GatewayConfigurationError: Error, Sendable, Equatable, CustomStringConvertible {
    package let problems: [String]

    package var description: String {
        "GATEWAY_CONFIG is not valid (docs/gateway.md):\n" + problems.map { "  - " + $0 }.joined(separator: "\n")
    }
}

extension GatewayConfiguration {
    /// Reads the file at `path`; `environment` supplies the upstreams' keys.
    package static func load(path: String, environment: [String: String]) throws(GatewayConfigurationError) -> GatewayConfiguration {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw GatewayConfigurationError(problems: ["GATEWAY_CONFIG=\(path): the file cannot be read (\(error))"])
        }
        let json: JSONValue
        do {
            json = try JSONValue.parse(data)
        } catch {
            throw GatewayConfigurationError(problems: ["GATEWAY_CONFIG=\(path): not JSON: \(error)"])
        }
        return try parse(json, environment: environment)
    }

    /// Checks a configuration document, collecting every problem before throwing.
    package static func parse(_ json: JSONValue, environment: [String: String]) throws(GatewayConfigurationError) -> GatewayConfiguration {
        var reader = ConfigReader()
        let configuration = reader.configuration(json, environment: environment)
        guard reader.problems.isEmpty, let configuration else { throw GatewayConfigurationError(problems: reader.problems) }
        return configuration
    }
}

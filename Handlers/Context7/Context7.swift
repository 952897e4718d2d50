import CurlHTTP
import RedisClient
import WorkerCache
import WorkerEndpointServer
import WorkerFleet
import WorkerMCP
import WorkerRuntime
import WorkerOpenAI

/// The composition root, shared by `main` and the tests.
enum Context7 {
    static func makeRuntime(_ configuration: Context7Configuration, http: CurlHTTPClient? = nil) throws -> WorkerRuntime {
        let redis: RedisClient?
        do {
            redis = try configuration.redis.map { try RedisClient(configuration: $0) }
        } catch {
            throw ConfigurationError.invalidValue("REDIS_CA_FILE", configuration.redis?.caFile ?? "", expected: "usable for TLS: \(error)")
        }
        var features: [WorkerFeature] = [
            .openAIPassthrough(), .endpointServer(), .mcp(), .fleet(),
            .responseCache(configuration.cache, redis: redis, handlerName: "context7", policy: Context7Handler.cachePolicy),
        ]
        if let redis { features.append(.sharedRateLimits(redis: redis)) }
        return WorkerRuntime(
            handler: Context7Handler(configuration: configuration, http: http ?? CurlHTTPClient(name: "context7"), redis: redis),
            options: WorkerOptions(name: "context7", instructions: Context7Tools.instructions, tools: Context7Tools.all),
            features: features)
    }
}

@main
struct Context7Main {
    static func main() {
        WorkerRuntime.runAndExit { environment in
            try Context7.makeRuntime(try Context7Configuration.fromEnvironment(environment))
        }
    }
}

import CurlHTTP
import EndpointAPI
import GatewayCore
import Logging
import WorkerJSON
import WorkerOpenAI
import WorkerRuntime

/// OpenAI requests on the gateway (`/openai/v1/*`, which the endpoint server turns into jobs with
/// `openai_route`): routed by `model` among the upstreams whose `models` list it, the least busy
/// healthy one first, another on the same terms when one never accepts the request (no
/// connection, 429, 5xx), never once an answer or a streamed byte has been written.
struct GatewayOpenAI: Sendable {
    let pool: UpstreamPool
    let client: CurlHTTPClient
    var metrics = GatewayMetrics()

    func handle(
        route: String, body: JSONValue?, output: JobOutputWriter, context: JobContext, headers: [(name: String, value: String)] = []
    ) async throws {
        output.beginStream(aggregate: true)
        if let refusal = OpenAICall.refusal(route: route) { return try await output.yield(refusal) }
        if route == "/v1/models", body == nil { return try await output.yield(models) }
        guard let model = body?["model"]?.stringValue else {
            return try await output.yield(
                OpenAIError.body(message: "the request names no model: the gateway routes OpenAI requests by model", type: "invalid_request_error", status: 400))
        }
        let serving = pool.upstreams.indices.filter { pool.upstreams[$0].openAIURL != nil && pool.upstreams[$0].models.contains(model) }
        guard !serving.isEmpty else {
            let known = Set(pool.upstreams.flatMap(\.models)).sorted().joined(separator: ", ")
            return try await output.yield(
                OpenAIError.body(message: "the model \(model) is not served here (models: \(known))", type: "invalid_request_error", status: 404))
        }
        var tried = Set<Int>()
        var failures: [String] = []
        while let index = pool.choose(among: serving, excluding: tried) {
            tried.insert(index)
            let upstream = pool.upstreams[index]
            switch pool.begin(index, fallback: !failures.isEmpty) {
            case .refusedByBreaker, .full: continue
            case .budgetSpent:
                return try await output.yield(
                    OpenAIError.body(message: "the gateway's retry budget is spent; before: \(failures.joined(separator: "; "))", type: "upstream_error", status: 503))
            case .admitted: break
            }
            var configuration = OpenAIConfiguration(baseURL: upstream.openAIURL ?? "", apiKey: upstream.apiKey)
            configuration.timeout = upstream.timeout
            // Another upstream remains that could take it: a refusal here writes nothing.
            let others = serving.contains { !tried.contains($0) && $0 != index }
            let started = ContinuousClock.now
            let outcome: OpenAICall.Outcome
            do {
                outcome = try await OpenAICall.send(
                    route: route, body: body, to: configuration, client: client, output: output, mayFallBack: others, headers: headers)
            } catch {
                pool.end(index, .outOfTime("cancelled"))
                throw error
            }
            switch outcome {
            case .answered:
                let (breaker, opened) = pool.end(index, .completed(nil))
                metrics.call(upstream.name, .completed(nil), elapsed: .now - started, metrics: context.metrics)
                metrics.breaker(upstream.name, breaker, opened: opened, metrics: context.metrics)
                return
            case .notAccepted(let reason, let retryAfter):
                let (breaker, opened) = pool.end(index, .retriable(reason), pause: retryAfter)
                metrics.call(upstream.name, .retriable(reason), elapsed: .now - started, metrics: context.metrics)
                metrics.breaker(upstream.name, breaker, opened: opened, metrics: context.metrics)
                metrics.fallback(from: upstream.name, metrics: context.metrics)
                context.logger.warning("Gateway: \(upstream.name) did not take the \(model) request (\(reason)); trying another upstream")
                failures.append("\(upstream.name): \(reason)")
            }
        }
        try await output.yield(
            OpenAIError.body(
                message: failures.isEmpty
                    ? "no upstream serving \(model) can take a request now (breakers open, paused or full)"
                    : "no upstream serving \(model) took the request: \(failures.joined(separator: "; "))",
                type: "upstream_error", status: 503))
    }

    /// `GET /v1/models`: every model an upstream serves, once, with the first upstream serving it.
    var models: JSONValue {
        var seen = Set<String>()
        var data: [JSONValue] = []
        for upstream in pool.upstreams where upstream.openAIURL != nil {
            for model in upstream.models where seen.insert(model).inserted {
                data.append(["id": .string(model), "object": "model", "owned_by": .string(upstream.name)])
            }
        }
        return ["object": "list", "data": .array(data)]
    }
}

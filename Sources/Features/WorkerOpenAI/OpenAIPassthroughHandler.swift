import CurlHTTP
import Logging
import WorkerJSON
import WorkerRuntime
import EndpointAPI

/// Forwards jobs with `openai_route` to an OpenAI-compatible upstream (docs/protocol.md, section 4);
/// every other job goes to the wrapped handler. Non-streaming requests yield exactly one JSON
/// value; `"stream": true` yields the upstream's SSE text, coalesced, ending with `data: [DONE]`.
/// Upstream errors and timeouts become an error in OpenAI's schema, never a hang.
struct OpenAIPassthroughHandler: RawJobHandler {
    let inner: any RawJobHandler
    let upstream: OpenAIConfiguration
    let client: CurlHTTPClient

    init(inner: any RawJobHandler, upstream: OpenAIConfiguration, client: CurlHTTPClient) {
        self.inner = inner
        self.upstream = upstream
        self.client = client
    }

    func start() async throws { try await inner.start() }
    func shutdown() async throws { try await inner.shutdown() }
    var isHealthy: Bool { inner.isHealthy }

    func handle(_ job: Job, output: JobOutputWriter, context: JobContext) async throws {
        guard case .object(let input) = job.input, let route = input["openai_route"]?.stringValue else {
            try await inner.handle(job, output: output, context: context)
            return
        }
        output.beginStream(aggregate: true)
        if let refusal = OpenAICall.refusal(route: route) {
            try await output.yield(refusal)
            return
        }
        let body = input["openai_input"].flatMap { $0 == .null ? nil : $0 }
        context.logger.debug("Forwarding \(body == nil ? "GET" : "POST") \(route) to the OpenAI upstream")
        _ = try await OpenAICall.send(route: route, body: body, to: upstream, client: client, output: output, mayFallBack: false)
    }
}

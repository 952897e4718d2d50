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
        guard route.hasPrefix("/v1/"), !route.contains(".."), !route.contains("://") else {
            try await output.yield(
                OpenAIError.body(message: "openai_route must be a path under /v1/, got \(route)", type: "invalid_request_error", status: 400))
            return
        }
        let body = input["openai_input"].flatMap { $0 == .null ? nil : $0 }
        let streaming = body?["stream"] == true
        var headers: [(name: String, value: String)] = [("Accept", streaming ? "text/event-stream" : "application/json")]
        if let key = upstream.apiKey { headers.append(("Authorization", "Bearer \(key)")) }
        var request = HTTPClientRequest(
            method: body == nil ? "GET" : "POST", url: upstream.url(for: route), headers: headers,
            connectTimeout: upstream.connectTimeout, timeout: upstream.timeout)
        request.lowSpeedTimeout = upstream.idleTimeout
        if let body {
            request.headers.append(("Content-Type", "application/json"))
            request.body = try body.serialized()
        }
        context.logger.debug("Forwarding \(request.method) \(route) to the OpenAI upstream")
        if streaming {
            try await relayStream(request, output: output)
        } else {
            try await forward(request, output: output)
        }
    }

    private func forward(_ request: HTTPClientRequest, output: JobOutputWriter) async throws {
        let response: HTTPClientResponse
        do {
            response = try await client.execute(request)
        } catch let error as HTTPClientError where !error.isCancellation {
            try await output.yield(Self.transportError(error))
            return
        }
        guard (200..<300).contains(response.status) else {
            try await output.yield(OpenAIError.fromUpstream(status: response.status, body: response.body))
            return
        }
        guard let value = try? JSONValue.parse(response.body) else {
            try await output.yield(
                OpenAIError.body(message: "the upstream answered with a body that is not JSON", type: "upstream_error", status: 502))
            return
        }
        try await output.yield(value)
    }

    private func relayStream(_ request: HTTPClientRequest, output: JobOutputWriter) async throws {
        let response: HTTPClientStreamingResponse
        do {
            response = try await client.stream(request)
        } catch let error as HTTPClientError where !error.isCancellation {
            try await output.yield(Self.transportError(error))
            return
        }
        guard (200..<300).contains(response.head.status) else {
            // Enough of the error body to report; the rest is not read (dropping the stream ends it).
            var body: [UInt8] = []
            for try await chunk in response.body {
                body += chunk
                if body.count >= Self.errorBodyLimit { break }
            }
            try await output.yield(OpenAIError.fromUpstream(status: response.head.status, body: body))
            return
        }
        do {
            try await SSECoalescer.relay(response.body, window: upstream.coalesceWindow) { text in
                try await output.yield(.string(text))
            }
        } catch let error as HTTPClientError where !error.isCancellation {
            try await output.yield(Self.transportError(error))
        }
    }

    static let errorBodyLimit = 64 * 1024

    static func transportError(_ error: HTTPClientError) -> JSONValue {
        OpenAIError.body(
            message: "the OpenAI upstream failed: \(error)", type: error.isTimeout ? "timeout" : "upstream_error",
            status: error.isTimeout ? 504 : 502)
    }
}

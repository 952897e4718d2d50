import CurlHTTP
import EndpointAPI
import WorkerJSON
import WorkerRuntime

/// One OpenAI-compatible request sent upstream, its answer written to the job's output: one JSON
/// value, or for `"stream": true` the upstream's SSE text, coalesced, as it comes. Shared by the
/// passthrough (one upstream) and the gateway (several, with fallback): with `mayFallBack`, a
/// request the upstream never accepted (no connection, 429, 5xx before any byte) writes nothing
/// and says so, so the caller can send it elsewhere. Once a streamed byte is written, nothing can
/// be sent elsewhere: a failure then ends the stream with an error.
package enum OpenAICall {
    package enum Outcome: Sendable, Equatable {
        /// The answer (or an error in OpenAI's schema) is written.
        case answered
        /// Nothing written: the upstream never accepted the request (the reason, and its
        /// `Retry-After` after a 429).
        case notAccepted(String, retryAfter: Duration?)
    }

    package static func send(
        route: String, body: JSONValue?, to upstream: OpenAIConfiguration, client: CurlHTTPClient, output: JobOutputWriter, mayFallBack: Bool,
        headers extra: [(name: String, value: String)] = []
    ) async throws -> Outcome {
        let streaming = body?["stream"] == true
        var headers: [(name: String, value: String)] = [("Accept", streaming ? "text/event-stream" : "application/json")]
        if let key = upstream.apiKey { headers.append(("Authorization", "Bearer \(key)")) }
        headers += extra
        var request = HTTPClientRequest(
            method: body == nil ? "GET" : "POST", url: upstream.url(for: route), headers: headers,
            connectTimeout: upstream.connectTimeout, timeout: upstream.timeout)
        request.lowSpeedTimeout = upstream.idleTimeout
        // A whole answer is held in memory: an upstream sending more than any response may hold
        // gets an error, not the process's memory. (A stream is relayed as it comes.)
        if !streaming { request.maxResponseBytes = EndpointLimits.inProcessChunkBytes }
        if let body {
            request.headers.append(("Content-Type", "application/json"))
            request.body = try body.serialized()
        }
        return streaming
            ? try await relayStream(request, upstream: upstream, client: client, output: output, mayFallBack: mayFallBack)
            : try await forward(request, client: client, output: output, mayFallBack: mayFallBack)
    }

    private static func forward(
        _ request: HTTPClientRequest, client: CurlHTTPClient, output: JobOutputWriter, mayFallBack: Bool
    ) async throws -> Outcome {
        let response: HTTPClientResponse
        do {
            response = try await client.execute(request)
        } catch let error as HTTPClientError where !error.isCancellation {
            // Only a connection never made is safe to repeat elsewhere: a request cut off after
            // it was sent may have run.
            if mayFallBack, error.isConnectFailure { return .notAccepted("\(error)", retryAfter: nil) }
            try await output.yield(transportError(error))
            return .answered
        }
        guard (200..<300).contains(response.status) else {
            if mayFallBack, UpstreamStatus.notAccepted(response.status) {
                return .notAccepted("HTTP \(response.status)", retryAfter: retryAfter(response.header("Retry-After")))
            }
            try await output.yield(OpenAIError.fromUpstream(status: response.status, body: response.body))
            return .answered
        }
        guard let value = try? JSONValue.parse(response.body) else {
            try await output.yield(OpenAIError.body(message: "the upstream answered with a body that is not JSON", type: "upstream_error", status: 502))
            return .answered
        }
        try await output.yield(value)
        return .answered
    }

    private static func relayStream(
        _ request: HTTPClientRequest, upstream: OpenAIConfiguration, client: CurlHTTPClient, output: JobOutputWriter, mayFallBack: Bool
    ) async throws -> Outcome {
        let response: HTTPClientStreamingResponse
        do {
            response = try await client.stream(request)
        } catch let error as HTTPClientError where !error.isCancellation {
            if mayFallBack, error.isConnectFailure { return .notAccepted("\(error)", retryAfter: nil) }
            try await output.yield(transportError(error))
            return .answered
        }
        guard (200..<300).contains(response.head.status) else {
            if mayFallBack, UpstreamStatus.notAccepted(response.head.status) {
                return .notAccepted("HTTP \(response.head.status)", retryAfter: retryAfter(response.head.header("Retry-After")))
            }
            // Enough of the error body to report; the rest is not read (dropping the stream ends it).
            var body: [UInt8] = []
            for try await chunk in response.body {
                body += chunk
                if body.count >= errorBodyLimit { break }
            }
            try await output.yield(OpenAIError.fromUpstream(status: response.head.status, body: body))
            return .answered
        }
        do {
            try await SSECoalescer.relay(response.body, window: upstream.coalesceWindow) { text in
                try await output.yield(.string(text))
            }
        } catch let error as HTTPClientError where !error.isCancellation {
            try await output.yield(transportError(error))
        }
        return .answered
    }

    /// Whether a job's `openai_route` may be sent upstream (a path under /v1/, nothing more); else
    /// the error to answer with.
    package static func refusal(route: String) -> JSONValue? {
        guard route.hasPrefix("/v1/"), !route.contains(".."), !route.contains("://") else {
            return OpenAIError.body(message: "openai_route must be a path under /v1/, got \(route)", type: "invalid_request_error", status: 400)
        }
        return nil
    }

    /// `Retry-After` in seconds (an HTTP date is taken as one second).
    static func retryAfter(_ value: String?) -> Duration? {
        guard let value else { return nil }
        guard let seconds = Int(value.trimmingSpaces()), seconds >= 0 else { return .seconds(1) }
        return .seconds(min(seconds, 300))
    }

    static let errorBodyLimit = 64 * 1024

    static func transportError(_ error: HTTPClientError) -> JSONValue {
        OpenAIError.body(
            message: "the OpenAI upstream failed: \(error)", type: error.isTimeout ? "timeout" : "upstream_error",
            status: error.isTimeout ? 504 : 502)
    }
}

import EndpointAPI
import HTTPTypes
import Hummingbird
import NIOCore
import WorkerJSON
import WorkerRuntime

/// `/openai/v1/*`: OpenAI SDK requests become jobs `{"openai_route", "openai_input"}` (as the
/// platform makes them); the answer is the job's single output, or its SSE text relayed as it
/// is produced.
enum OpenAIRoutes {
    static let group = EndpointRouteGroup(name: "openai") { router, server in
        router.get("openai/v1/models") { request, _ in try await handle(server, route: "/v1/models", body: nil, headers: request.headers) }
        router.post("openai/v1/**") { request, context in
            let path = context.parameters.getCatchAll().joined(separator: "/")
            let body = try await server.readJSON(request, limit: server.limits.runsyncBodyBytes)
            return try await handle(server, route: "/v1/\(path)", body: body, headers: request.headers)
        }
    } refusal: { path, status, message in
        // OpenAI clients read errors in OpenAI's shape.
        guard path.contains("/openai/v1/") || path.hasSuffix("/openai/v1") else { return nil }
        return .json(OpenAIError.refusal(message: message, status: status.code), status: status)
    }

    /// The routes metrics are labelled with; anything else counts as `other`, so clients cannot
    /// grow the registry with paths of their own.
    static let knownRoutes: Set<String> = [
        "/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/models", "/v1/responses",
        "/v1/audio/transcriptions", "/v1/audio/speech", "/v1/images/generations", "/v1/moderations",
    ]

    static func metricsLabel(_ route: String) -> String { knownRoutes.contains(route) ? route : "other" }

    private static func handle(_ server: EndpointRouteContext, route: String, body: JSONValue?, headers: HTTPFields) async throws -> Response {
        do {
            try server.ensureReady()
        } catch {
            return errorResponse(server, OpenAIError.body(message: error.message, type: "server_error", status: 503), route: route)
        }
        var input: [String: JSONValue] = ["openai_route": .string(route)]
        if let body { input["openai_input"] = body }
        var request = JobRequest(input: .object(input))
        server.recordHeaders(headers, in: &request)
        let id: String
        do {
            if body?["stream"] == true {
                let (id, events) = try await server.submitListening(request, sync: true)
                return try await stream(server, id: id, events: events, route: route)
            }
            id = try await server.submit(request, sync: true)
        } catch let error as APIError {
            // The queue's byte budget is full: OpenAI clients retry 429s with backoff.
            return errorResponse(server, OpenAIError.body(message: error.message, type: "rate_limit_exceeded", status: 429), route: route)
        }
        guard let report = await server.waitForFinal(id, timeout: server.limits.defaultExecutionTimeout + .seconds(1)),
            report.status.isFinal
        else {
            await server.stop(id, as: .timedOut)
            return errorResponse(server, OpenAIError.body(message: "the job did not finish in time", type: "timeout", status: 504), route: route)
        }
        guard report.status == .completed else {
            return errorResponse(server, OpenAIError.normalized(report.error.map(JSONValue.string)), route: route)
        }
        // The passthrough (and worker-vllm) answer a non-streamed request with a one-value stream.
        var output = report.output ?? .null
        if case .array(let values) = output, values.count == 1 { output = values[0] }
        server.metrics.passthrough(route: metricsLabel(route), status: 200)
        return .json(output)
    }

    private static func stream(
        _ server: EndpointRouteContext, id: String, events: AsyncStream<JobEvent>, route: String
    ) async throws -> Response {
        var iterator = events.makeAsyncIterator()
        // The first event decides the status: an upstream that refuses at once gets its HTTP error.
        var next = await iterator.next()
        // Progress updates are not part of an OpenAI stream.
        while case .progress = next { next = await iterator.next() }
        guard let first = next else {
            return errorResponse(server, OpenAIError.body(message: "the job vanished", type: "server_error", status: 500), route: route)
        }
        if case .finished(let report) = first, report.status != .completed {
            return errorResponse(server, OpenAIError.normalized(report.error.map(JSONValue.string)), route: route)
        }
        server.metrics.passthrough(route: metricsLabel(route), status: 200)
        let pending = UncheckedIterator(iterator)
        return Response(
            status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"],
            body: .init { writer in
                var iterator = pending.iterator
                var event: JobEvent? = first
                var sawDone = false
                while let current = event {
                    switch current {
                    case .progress: break
                    case .chunk(let chunk):
                        let text = sseText(chunk)
                        if text.contains("data: [DONE]") { sawDone = true }
                        try await writer.write(ByteBuffer(string: text))
                    case .finished(let report):
                        if report.status != .completed {
                            let error = OpenAIError.normalized(report.error.map(JSONValue.string))
                            try await writer.write(ByteBuffer(string: "data: \((try? error.jsonString()) ?? "{}")\n\n"))
                        }
                        if !sawDone { try await writer.write(ByteBuffer(string: "data: [DONE]\n\n")) }
                        try await writer.finish(nil)
                        return
                    }
                    event = await iterator.next()
                }
                // The listener ended without a final event: the job was purged or expired.
                await server.stop(id, as: .cancelled)
                try await writer.finish(nil)
            })
    }

    /// A chunk as SSE: the passthrough's chunks are already SSE text; a handler's own JSON chunks
    /// are framed as `data:` events.
    static func sseText(_ chunk: JSONValue) -> String {
        if case .string(let text) = chunk { return text }
        return "data: \((try? chunk.jsonString()) ?? "null")\n\n"
    }

    private static func errorResponse(_ server: EndpointRouteContext, _ error: JSONValue, route: String) -> Response {
        let status = OpenAIError.status(of: error)
        server.metrics.passthrough(route: metricsLabel(route), status: status)
        return .json(error, status: HTTPResponse.Status(code: status))
    }
}

/// Hands an iterator, already advanced once, to the response body writer that finishes it.
private struct UncheckedIterator: @unchecked Sendable {
    let iterator: AsyncStream<JobEvent>.Iterator
    init(_ iterator: AsyncStream<JobEvent>.Iterator) { self.iterator = iterator }
}

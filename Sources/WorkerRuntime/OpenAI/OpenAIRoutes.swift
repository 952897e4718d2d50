import HTTPTypes
import Hummingbird
import NIOCore

/// `/openai/v1/*`: OpenAI SDK requests become jobs `{"openai_route", "openai_input"}` (as the
/// platform makes them); the answer is the job's single output, or its SSE text relayed as it
/// is produced.
struct OpenAIRoutes: Sendable {
    let server: LocalServer

    func add(to router: some RouterMethods<BasicRequestContext>) {
        router.get("openai/v1/models") { request, _ in try await handle(request, route: "/v1/models", body: nil) }
        router.post("openai/v1/**") { request, context in
            let path = context.parameters.getCatchAll().joined(separator: "/")
            let body = try await server.readJSON(request, limit: server.configuration.limits.runsyncBodyBytes)
            return try await handle(request, route: "/v1/\(path)", body: body)
        }
    }

    private func handle(_ request: Request, route: String, body: JSONValue?) async throws -> Response {
        do {
            try server.ensureReady()
        } catch {
            return errorResponse(OpenAIError.body(message: error.message, type: "server_error", status: 503), route: route)
        }
        var input: [String: JSONValue] = ["openai_route": .string(route)]
        if let body { input["openai_input"] = body }
        let job = try server.store.submit(["input": .object(input)], sync: true)
        if body?["stream"] == true {
            return try await stream(job.id, route: route)
        }
        guard let finished = await server.store.waitForFinal(job.id, timeout: job.executionTimeout + .seconds(1)),
            finished.status.isFinal
        else {
            server.store.stop(job.id, as: .timedOut)
            return errorResponse(OpenAIError.body(message: "the job did not finish in time", type: "timeout", status: 504), route: route)
        }
        guard finished.status == .completed else {
            return errorResponse(OpenAIError.normalized(finished.error.map(JSONValue.string)), route: route)
        }
        // The passthrough (and worker-vllm) answer a non-streamed request with a one-value stream.
        var output = finished.output ?? .null
        if case .array(let values) = output, values.count == 1 { output = values[0] }
        server.metrics.passthrough(route: route, status: 200)
        return .json(output)
    }

    private func stream(_ id: String, route: String) async throws -> Response {
        guard let events = server.store.listen(id) else { throw server.notFound(id) }
        var iterator = events.makeAsyncIterator()
        // The first event decides the status: an upstream that refuses at once gets its HTTP error.
        guard let first = await iterator.next() else {
            return errorResponse(OpenAIError.body(message: "the job vanished", type: "server_error", status: 500), route: route)
        }
        if case .finished(let job) = first, job.status != .completed {
            return errorResponse(OpenAIError.normalized(job.error.map(JSONValue.string)), route: route)
        }
        server.metrics.passthrough(route: route, status: 200)
        let store = server.store
        let pending = UncheckedIterator(iterator)
        return Response(
            status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"],
            body: .init { writer in
                var iterator = pending.iterator
                var event: LocalJobStore.Event? = first
                var sawDone = false
                while let current = event {
                    switch current {
                    case .chunk(let chunk):
                        let text = Self.sseText(chunk)
                        if text.contains("data: [DONE]") { sawDone = true }
                        try await writer.write(ByteBuffer(string: text))
                    case .finished(let job):
                        if job.status != .completed {
                            let error = OpenAIError.normalized(job.error.map(JSONValue.string))
                            try await writer.write(ByteBuffer(string: "data: \((try? error.jsonString()) ?? "{}")\n\n"))
                        }
                        if !sawDone { try await writer.write(ByteBuffer(string: "data: [DONE]\n\n")) }
                        try await writer.finish(nil)
                        return
                    }
                    event = await iterator.next()
                }
                // The listener ended without a final event: the job was purged or expired.
                store.stop(id, as: .cancelled)
                try await writer.finish(nil)
            })
    }

    /// A chunk as SSE: the passthrough's chunks are already SSE text; a handler's own JSON chunks
    /// are framed as `data:` events.
    static func sseText(_ chunk: JSONValue) -> String {
        if case .string(let text) = chunk { return text }
        return "data: \((try? chunk.jsonString()) ?? "null")\n\n"
    }

    private func errorResponse(_ error: JSONValue, route: String) -> Response {
        let status = OpenAIError.status(of: error)
        server.metrics.passthrough(route: route, status: status)
        return .json(error, status: HTTPResponse.Status(code: status))
    }
}

/// Hands an iterator, already advanced once, to the response body writer that finishes it.
private struct UncheckedIterator: @unchecked Sendable {
    let iterator: AsyncStream<LocalJobStore.Event>.Iterator
    init(_ iterator: AsyncStream<LocalJobStore.Event>.Iterator) { self.iterator = iterator }
}

import EndpointAPI
import HTTPTypes
import Hummingbird
import NIOCore
import WorkerEndpointServer
import WorkerJSON
import WorkerRuntime

/// MCP's streamable HTTP transport at `/mcp` (and `/v2/{endpoint id}/mcp`), stateless: no
/// session id is issued or needed, so any replica behind a load balancer answers any request.
/// Each POST carries one message and gets its own answer (JSON, or SSE when the client takes it
/// and asked for progress), so two requests with the same id never meet.
struct MCPHTTPRoute: Sendable {
    let core: MCPServerCore
    let policy: MCPAccessPolicy
    let server: EndpointRouteContext
    let inFlight: MCPInFlight

    static let mcpMethod = HTTPField.Name("Mcp-Method")!
    static let mcpName = HTTPField.Name("Mcp-Name")!
    static let protocolVersion = HTTPField.Name("MCP-Protocol-Version")!

    static func group(inFlight: MCPInFlight) -> EndpointRouteGroup {
        EndpointRouteGroup(name: "mcp") { router, server in
            let worker = server.worker
            let route = MCPHTTPRoute(
                core: MCPServerCore(tools: worker.tools, serverVersion: WorkerRuntimeVersion.current),
                policy: MCPAccessPolicy(configuration: worker.configuration, server: server.server), server: server,
                inFlight: inFlight)
            router.post("mcp") { request, context in await route.post(request, context) }
            // No server-to-client stream and no sessions to end: both are refused as the spec allows.
            for method in [HTTPRequest.Method.get, .delete] {
                router.on("mcp", method: method) { _, _ in
                    Response(status: .methodNotAllowed, headers: [.allow: "POST"])
                }
            }
        }
    }

    func post(_ request: Request, _ context: EndpointRequestContext) async -> Response {
        let headers = request.headers
        if let denial = policy.check(host: request.head.authority, origin: headers.firstValue(.origin)) {
            return Self.json(MCPError.invalidRequest(denial.message).message(id: .null), status: denial.status)
        }
        let accept = headers[values: .accept].joined(separator: ",").lowercased()
        let takesJSON = accept.isEmpty || accept.contains("application/json") || accept.contains("*/*") || accept.contains("application/*")
        let takesSSE = accept.contains("text/event-stream")
        guard takesJSON || takesSSE else {
            return Self.json(MCPError.invalidRequest("Accept must include application/json or text/event-stream").message(id: .null), status: 406)
        }
        if let type = headers.firstValue(.contentType)?.lowercased(), !type.hasPrefix("application/json") {
            return Self.json(MCPError.invalidRequest("Content-Type must be application/json, got \(type)").message(id: .null), status: 415)
        }
        let message: MCPMessage
        do {
            message = try MCPMessage.classify(try await body(request))
        } catch {
            return Self.json(error.message(id: .null), status: error.httpStatus)
        }
        let sent = MCPRequestHeaders(
            protocolVersion: headers.firstValue(Self.protocolVersion), method: headers.firstValue(Self.mcpMethod), name: headers.firstValue(Self.mcpName))
        switch core.answer(message, headers: sent) {
        case .accepted:
            return Response(status: .accepted)
        case .cancel(let requestID):
            inFlight.cancel(.init(client: client(request, context), id: requestID))
            return Response(status: .accepted)
        case .reply(let reply, let status):
            return Self.json(reply, status: status)
        case .call(let call):
            do {
                try server.ensureReady()
            } catch {
                return Self.json(MCPError.internalError(error.message).message(id: call.id), status: 503)
            }
            let key = MCPInFlight.Key(client: client(request, context), id: call.id)
            if takesSSE, call.progressToken != nil { return stream(call, key: key, context) }
            return await respond(call, key: key, context)
        }
    }

    /// The call's answer as one JSON body, once the job ends; it runs on the request's own task.
    private func respond(_ call: MCPToolCall, key: MCPInFlight.Key, _ context: EndpointRequestContext) async -> Response {
        let cancellation = MCPCallCancellation(jobs: server)
        let outcome = await watched(cancellation, key: key, context) {
            await MCPToolRunner(jobs: server).run(call, cancellation: cancellation) { _ in }
        }
        switch outcome {
        case .message(let reply): return Self.json(reply, status: 200)
        case .cancelled: return Self.json(Self.cancelled(call.id), status: 200)
        }
    }

    /// The call's progress as SSE events, then its answer, then the stream ends.
    private func stream(_ call: MCPToolCall, key: MCPInFlight.Key, _ context: EndpointRequestContext) -> Response {
        let runner = MCPToolRunner(jobs: server)
        return Response(
            status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"],
            body: .init { writer in
                let cancellation = MCPCallCancellation(jobs: server)
                let (events, continuation) = AsyncStream<JSONValue>.makeStream()
                let outcome = Task {
                    let outcome = await watched(cancellation, key: key, context) {
                        await runner.run(call, cancellation: cancellation) { continuation.yield($0) }
                    }
                    continuation.finish()
                    return outcome
                }
                do {
                    for await event in events { try await writer.write(Self.event(event)) }
                    if case .message(let reply) = await outcome.value { try await writer.write(Self.event(reply)) }
                    try await writer.finish(nil)
                } catch {
                    // The client is gone: stop its job.
                    cancellation.cancel()
                    throw error
                }
            })
    }

    /// Runs a call, cancelling it when the client sends `notifications/cancelled` or hangs up.
    private func watched(
        _ cancellation: MCPCallCancellation, key: MCPInFlight.Key, _ context: EndpointRequestContext,
        _ body: () async -> MCPCallOutcome
    ) async -> MCPCallOutcome {
        let token = inFlight.start(key) { cancellation.cancel() }
        let watch = context.onClientHangUp { cancellation.cancel() }
        defer {
            watch.cancel()
            inFlight.finish(key, token: token)
        }
        return await body()
    }

    private func body(_ request: Request) async throws(MCPError) -> JSONValue {
        let buffer: ByteBuffer
        do {
            buffer = try await server.readBody(request, limit: server.limits.runsyncBodyBytes)
        } catch {
            throw MCPError.invalidRequest(error.message)
        }
        do {
            return try JSONValue.parse(buffer.readableBytesView)
        } catch {
            throw MCPError.parse("the body is not JSON: \(error)")
        }
    }

    /// Whose request this is, for cancellation: the credentials it carries and where it comes from.
    private func client(_ request: Request, _ context: EndpointRequestContext) -> String {
        "\(request.headers.firstValue(.authorization) ?? "")|\(context.remoteHost)"
    }

    static func cancelled(_ id: JSONValue) -> JSONValue {
        MCPError(code: -32800, message: "the request was cancelled", data: nil).message(id: id)
    }

    static func event(_ message: JSONValue) -> ByteBuffer {
        ByteBuffer(string: "event: message\ndata: \((try? message.jsonString()) ?? "{}")\n\n")
    }

    static func json(_ value: JSONValue, status: Int) -> Response {
        Response.json(value, status: HTTPResponse.Status(code: status))
    }
}

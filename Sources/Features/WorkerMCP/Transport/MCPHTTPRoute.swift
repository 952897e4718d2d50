import Dispatch
import EndpointAPI
import HTTPTypes
import Logging
import Hummingbird
import MCPAuth
import NIOCore
import Synchronization
import WorkerEndpointServer
import WorkerJSON
import WorkerRuntime

/// MCP's streamable HTTP transport at `/mcp` (and `/v2/{endpoint id}/mcp`), stateless: no
/// session id is issued or needed, so any replica behind a load balancer answers any request.
/// Each POST carries one message and gets its own answer (JSON, or SSE when the client takes it
/// and asked for progress), so two requests with the same id never meet.
struct MCPHTTPRoute: Sendable {
    let core: MCPServerCore
    let server: EndpointRouteContext
    let inFlight: MCPInFlight
    /// OAuth, when `MCP_AUTH_ISSUER` is set: every request's token, every tool call's scopes.
    let authorization: MCPAuthorization?

    static let mcpMethod = HTTPField.Name("Mcp-Method")!
    static let mcpName = HTTPField.Name("Mcp-Name")!
    static let protocolVersion = HTTPField.Name("MCP-Protocol-Version")!
    static let sessionID = HTTPField.Name("Mcp-Session-Id")!

    static func group(inFlight: MCPInFlight) -> EndpointRouteGroup {
        let authorizations = MCPAuthorization.PerWorker()
        return EndpointRouteGroup(name: "mcp") { router, server in
            let worker = server.worker
            let authorization = authorizations.get(server)
            let route = MCPHTTPRoute(
                core: MCPServerCore(tools: worker.tools, source: worker.options.toolSource, serverVersion: WorkerRuntimeVersion.current),
                server: server, inFlight: inFlight,
                authorization: authorization)
            router.post("mcp") { request, context in await route.post(request, context) }
            authorization?.addMetadataRoutes(to: router)
            // No server-to-client stream and no sessions to end: both are refused as the spec allows.
            for method in [HTTPRequest.Method.get, .delete] {
                router.on("mcp", method: method) { _, _ in
                    Response(status: .methodNotAllowed, headers: [.allow: "POST"])
                }
            }
        } refusal: { path, status, message in
            // The server's request guard (Host and Origin by `HostOriginPolicy`, the body's type)
            // refuses before the route runs; MCP clients get its refusal as a JSON-RPC error.
            guard path.hasSuffix("/mcp") else { return nil }
            return Response.json(MCPError.invalidRequest(message).message(id: .null), status: status)
        } authenticatesItself: { server in
            guard server.worker.settings[MCPAuthSettings.self] != nil else { return nil }
            return MCPAuthorization.ownsPath
        }
    }

    func post(_ request: Request, _ context: EndpointRequestContext) async -> Response {
        let headers = request.headers
        // Before anything else: a client without a good token learns nothing about the server.
        var grant: VerifiedToken?
        if let authorization {
            switch await authorization.authenticate(request) {
            case .success(let granted): grant = granted
            case .failure(let refusal): return authorization.response(refusal, logger: server.logger)
            }
        }
        // Host and Origin were checked by the server's request guard, before the route.
        let (takesJSON, takesSSE) = Self.accepted(headers)
        guard takesJSON || takesSSE else {
            return Self.json(MCPError.invalidRequest("Accept must include application/json or text/event-stream").message(id: .null), status: 406)
        }
        if let type = headers.firstValue(.contentType), !MediaRange.isJSON(contentType: type) {
            return Self.json(MCPError.invalidRequest("Content-Type must be application/json, got \(type)").message(id: .null), status: 415)
        }
        if let session = headers.firstValue(Self.sessionID), !MCPSession.isValid(session) {
            return Self.json(
                MCPError.invalidRequest("Mcp-Session-Id must be 1 to 128 visible ASCII characters").message(id: .null), status: 400)
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
            // A client that takes only SSE gets the answer as one event.
            var response =
                takesJSON || status != 200
                ? Self.json(reply, status: status)
                : Response(
                    status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"],
                    body: .init(byteBuffer: Self.event(reply)))
            if case .request(_, "initialize", _) = message, status == 200 {
                // Kept nowhere: any replica accepts any id. It only scopes this client's cancels.
                response.headers[Self.sessionID] = MCPSession.newID()
            }
            return response
        case .call(let call):
            if let authorization, let grant {
                do {
                    try authorization.verifier.authorize(grant, tool: call.tool.name, declared: call.tool.scopes)
                } catch {
                    return authorization.response(error, logger: server.logger)
                }
            }
            do {
                try server.ensureReady()
            } catch {
                return Self.json(MCPError.internalError(error.message).message(id: call.id), status: 503)
            }
            let key = MCPInFlight.Key(client: client(request, context), id: call.id)
            // SSE for progress, or when it is all the client takes.
            if takesSSE, call.progressToken != nil || !takesJSON { return stream(call, key: key, context) }
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
        case .encoded(let bytes): return Response.json(bytes: bytes)
        case .cancelled: return Self.json(Self.cancelled(call.id), status: 200)
        }
    }

    /// The call's progress as SSE events, then its answer, then the stream ends.
    ///
    /// Bounded for a client that does not read: progress waiting to be written keeps only the
    /// newest `pendingProgress` updates (each supersedes the one before), and a write that the
    /// client leaves unaccepted for `HTTP_IDLE_TIMEOUT` ends the call and the connection. Unbounded,
    /// 100 such clients once grew a worker to 4 GB and kept their jobs running.
    private func stream(_ call: MCPToolCall, key: MCPInFlight.Key, _ context: EndpointRequestContext) -> Response {
        let runner = MCPToolRunner(jobs: server)
        let writeTimeout = server.limits.idleTimeout
        let logger = server.worker.logger
        return Response(
            status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"],
            body: .init { writer in
                let cancellation = MCPCallCancellation(jobs: server)
                let (events, continuation) = AsyncStream<JSONValue>.makeStream(bufferingPolicy: .bufferingNewest(Self.pendingProgress))
                let outcome = Task {
                    let outcome = await watched(cancellation, key: key, context) {
                        await runner.run(call, cancellation: cancellation) { continuation.yield($0) }
                    }
                    continuation.finish()
                    return outcome
                }
                let writes = PendingWrite()
                let channel = context.channel
                let watchdog = Task {
                    while !Task.isCancelled {
                        try? await Task.sleep(for: .milliseconds(250))
                        guard writes.stalled(longerThan: writeTimeout) else { continue }
                        logger.warning("MCP: a client accepted no SSE bytes for \(writeTimeout); its call is cancelled and its connection closed")
                        cancellation.cancel()
                        channel.close(promise: nil)
                        return
                    }
                }
                defer { watchdog.cancel() }
                do {
                    for await event in events { try await writes.during { try await writer.write(Self.event(event)) } }
                    if let reply = await outcome.value.bytes { try await writes.during { try await writer.write(Self.event(bytes: reply)) } }
                    try await writer.finish(nil)
                } catch {
                    // The client is gone: stop its job.
                    cancellation.cancel()
                    throw error
                }
            })
    }

    /// Progress updates held for a client that reads slowly; older ones are dropped.
    static let pendingProgress = 16

    /// Runs a call, cancelling it when the client sends `notifications/cancelled` or hangs up.
    private func watched(
        _ cancellation: MCPCallCancellation, key: MCPInFlight.Key, _ context: EndpointRequestContext,
        _ body: () async -> MCPCallOutcome
    ) async -> MCPCallOutcome {
        let token = inFlight.start(key) { cancellation.cancel() }
        let watch = context.onClientHangUp { cancellation.cancel() }
        defer {
            watch.cancel()
            inFlight.finish(token: token)
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

    /// Whose call this is, for cancellation: the session its client echoes (the random id issued
    /// with `initialize`, which no other client knows), else its own connection. A key or an
    /// address is no identity here: every local client, or every client behind one balancer with
    /// one key, shares them, and one could cancel another's call with id 1.
    private func client(_ request: Request, _ context: EndpointRequestContext) -> MCPInFlight.Client {
        if let session = request.headers.firstValue(Self.sessionID) { return .session(session) }
        return .connection(ObjectIdentifier(context.channel))
    }

    /// Whether the client takes JSON answers, and SSE ones. What MCP clients send (the spec's
    /// `application/json, text/event-stream`) is recognized as it is; anything else is parsed:
    /// a range with q=0 refuses what it names, the most specific range covering a type decides,
    /// and SSE counts when named, or, for a client that refuses JSON, when a wildcard covers it.
    static func accepted(_ headers: HTTPFields) -> (json: Bool, sse: Bool) {
        let accept = headers[values: .accept].joined(separator: ",")
        if accept == "application/json, text/event-stream" || accept == "application/json,text/event-stream" { return (true, true) }
        let ranges = MediaRange.list(accept)
        let json = accept.isEmpty || MediaRange.accepts(ranges, type: "application", subtype: "json")
        let sse =
            ranges.contains { $0.type == "text" && $0.subtype == "event-stream" && $0.quality > 0 }
            || (!json && MediaRange.accepts(ranges, type: "text", subtype: "event-stream"))
        return (json, sse)
    }

    static func cancelled(_ id: JSONValue) -> JSONValue {
        MCPError(code: -32800, message: "the request was cancelled", data: nil).message(id: id)
    }

    static func event(_ message: JSONValue) -> ByteBuffer {
        event(bytes: (try? message.serialized()) ?? Array("{}".utf8))
    }

    static func event(bytes: [UInt8]) -> ByteBuffer {
        var buffer = ByteBuffer(string: "event: message\ndata: ")
        buffer.writeBytes(bytes)
        buffer.writeString("\n\n")
        return buffer
    }

    static func json(_ value: JSONValue, status: Int) -> Response {
        Response.json(value, status: HTTPResponse.Status(code: status))
    }
}

/// When the write under way started (uptime nanoseconds; 0: none), for the SSE write deadline.
final class PendingWrite: Sendable {
    private let since = Atomic<UInt64>(0)

    func during<T>(_ write: () async throws -> T) async rethrows -> T {
        since.store(DispatchTime.now().uptimeNanoseconds, ordering: .relaxed)
        defer { since.store(0, ordering: .relaxed) }
        return try await write()
    }

    func stalled(longerThan limit: Duration) -> Bool {
        let started = since.load(ordering: .relaxed)
        guard started != 0 else { return false }
        return Duration.nanoseconds(Int64(DispatchTime.now().uptimeNanoseconds - started)) > limit
    }
}

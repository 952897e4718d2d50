import Logging
import ServiceLifecycle
import WorkerEndpointServer
import EndpointAPI
import WorkerJSON
import WorkerRuntime

/// `--mcp`: the MCP server over standard input and output. Tool calls run on the endpoint
/// server's job path (without its HTTP listener); several run at once, as the client sends them.
/// The end of standard input ends the worker once the calls in flight have answered.
struct MCPStdioService: Service {
    let context: WorkerContext

    func run() async throws {
        let channel = StdioChannel(maxLineBytes: EndpointLimits.runsyncBodyBytes)
        // Desktop clients list the tools once, right after `initialize`: a source of tools that
        // change (the gateway's) fills its catalog first.
        await context.options.toolSource?.prepare()
        let core = MCPServerCore(tools: context.tools, source: context.options.toolSource, serverVersion: WorkerRuntimeVersion.current)
        let logger = context.logger
        logger.info("Serving MCP on standard input and output (tools: \(core.tools.tools.map(\.name).joined(separator: ", ")))")
        try await EndpointJobHost(context: context).run { jobs in
            let inFlight = MCPInFlight()
            await withTaskGroup(of: Void.self) { group in
                for await line in channel.lines() {
                    if case .message = line, await !channel.taken() {
                        logger.warning("MCP: standard input ended and the client reads no answers; the requests left are dropped")
                        break
                    }
                    Self.handle(line, core: core, jobs: jobs, inFlight: inFlight, channel: channel, group: &group)
                }
                await group.waitForAll()
            }
            channel.stop()
            if await !channel.flush() {
                logger.warning("MCP: the client stopped reading standard output; answers left unwritten are dropped")
            }
        }
    }

    private static func handle(
        _ line: StdioChannel.Line, core: MCPServerCore, jobs: EndpointRouteContext, inFlight: MCPInFlight, channel: StdioChannel,
        group: inout TaskGroup<Void>
    ) {
        let message: MCPMessage
        switch line {
        case .tooLong(let bytes):
            channel.send(MCPError.invalidRequest("a message of \(bytes) bytes is over the limit; it was dropped").message(id: .null))
            return
        case .message(let bytes):
            do {
                let value: JSONValue
                do {
                    value = try JSONValue.parse(bytes)
                } catch {
                    throw MCPError.parse("the line is not JSON: \(error)")
                }
                message = try MCPMessage.classify(value)
            } catch let error as MCPError {
                channel.send(error.message(id: .null))
                return
            } catch {
                return
            }
        }
        switch core.answer(message, headers: nil) {
        case .accepted:
            return
        case .cancel(let requestID):
            inFlight.cancel(.init(client: .stdio, id: requestID))
        case .reply(let reply, _):
            channel.send(reply)
        case .call(let call):
            let key = MCPInFlight.Key(client: .stdio, id: call.id)
            let runner = MCPToolRunner(jobs: jobs)
            channel.callStarted()
            group.addTask {
                defer { channel.callFinished() }
                // The agent launched this process just now: a call may come while the handler starts.
                await jobs.waitForStart()
                do throws(APIError) {
                    try jobs.ensureReady()
                } catch {
                    channel.send(MCPError.internalError(error.message).message(id: call.id))
                    return
                }
                let cancellation = MCPCallCancellation(jobs: jobs)
                let token = inFlight.start(key) { cancellation.cancel() }
                let outcome = await runner.run(call, cancellation: cancellation) { channel.send($0) }
                inFlight.finish(token: token)
                // A cancelled request is owed no answer.
                if let reply = outcome.bytes { channel.send(bytes: reply) }
            }
        }
    }
}

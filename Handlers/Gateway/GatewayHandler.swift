import EndpointAPI
import EndpointClient
import GatewayCore
import Logging
import WorkerJSON
import WorkerRuntime

/// The gateway's job: find the tiers the job may run on (`TierRouter`), then, tier by tier,
/// call the upstream `UpstreamPool` chooses, falling back to another of the tier and then to the
/// next tier only when that is safe: the upstream never accepted the job (refused, 429, 5xx), or
/// ended it TIMED_OUT. Fallbacks spend from the retry budget; the job's own
/// `policy.executionTimeout` bounds every attempt together. The upstream's output, or its error,
/// is the job's.
struct GatewayHandler: RawJobHandler {
    let router: TierRouter
    let pool: UpstreamPool
    let clients: [(any UpstreamJobs)?]
    /// Jobs with `openai_route` (the `/openai/v1/*` routes).
    let openAI: GatewayOpenAI
    /// The upstreams' MCP tools, whose calls come as jobs with `mcp_call`.
    var tools: MCPUpstreams?
    let metrics = GatewayMetrics()
    /// How often a job not final after its `/runsync` is asked about.
    var schedule = PollSchedule(initial: .milliseconds(100), factor: 1.5, cap: .seconds(2))
    /// This gateway process, in the chain of gateways a request passed (`GatewayChain`).
    var instance = GatewayHandler.newInstanceID()

    func handle(_ job: Job, output: JobOutputWriter, context: JobContext) async throws {
        let chain = GatewayChain(job.raw[GatewayChain.jobField]?.stringValue)
        if let refusal = chain.refusal(at: instance) {
            context.logger.error("Gateway: \(refusal.message)")
            if case .object(let input) = job.input, input["openai_route"] != nil {
                output.beginStream(aggregate: true)
                return try await output.yield(OpenAIError.refusal(message: refusal.message, status: refusal.status))
            }
            throw GatewayError(refusal.message)
        }
        let hop = [chain.forwarded(by: instance)]
        if case .object(let input) = job.input, let route = input["openai_route"]?.stringValue {
            let body = input["openai_input"].flatMap { $0 == .null ? nil : $0 }
            return try await openAI.handle(route: route, body: body, output: output, context: context, headers: hop)
        }
        if let tools, let call = job.input[MCPUpstreams.forwardKey], let name = call["name"]?.stringValue {
            return try await forward(tool: name, arguments: call["arguments"] ?? [:], tools: tools, output: output, context: context)
        }
        if let path = job.raw["endpointPath"]?.stringValue,
            let index = pool.upstreams.firstIndex(where: { $0.name == path && $0.url != nil }), let client = clients[index]
        {
            return try await pinned(index, client: client, job: job, output: output, context: context, headers: hop)
        }
        // Serialized only when a rule tests the input's size.
        let inputBytes = router.usesInputSize ? (try? job.input.serialized().count) ?? 0 : 0
        let tiers: [String]
        do {
            tiers = try router.tiers(for: job.raw, inputBytes: inputBytes)
        } catch {
            throw GatewayError(error.description)
        }
        let request = try Self.forwarded(job)
        var failures: [String] = []
        var first = true
        for tier in tiers {
            var tried = Set<Int>()
            while let index = pool.choose(tier: tier, excluding: tried), let client = clients[index] {
                tried.insert(index)
                let name = pool.upstreams[index].name
                switch pool.begin(index, fallback: !first) {
                case .refusedByBreaker, .full:
                    continue
                case .budgetSpent:
                    throw GatewayError(
                        "the gateway's retry budget is spent (too many fallbacks lately), so the job was not sent again; before: \(failures.joined(separator: "; "))")
                case .admitted:
                    break
                }
                first = false
                switch try await attempt(index, client: client, request: request, output: output, context: context, headers: hop) {
                case .completed:
                    context.logger.info("Gateway: done by \(name) (tier \(tier))")
                    return
                case .failed(let message), .refused(let message), .lost(let message), .outOfTime(let message):
                    throw GatewayError(message)
                case .retriable(let reason):
                    metrics.fallback(from: name, metrics: context.metrics)
                    context.logger.warning("Gateway: \(name) did not take the job (\(reason)); trying another upstream")
                    failures.append("\(name): \(reason)")
                }
            }
        }
        if failures.isEmpty {
            throw GatewayError(
                "no upstream of tier(s) \(tiers.joined(separator: ", ")) can take a job now (each has its breaker open, is paused after a 429, or is full)")
        }
        throw GatewayError("no upstream took the job: \(failures.joined(separator: "; "))")
    }

    /// One call to upstream `index` (begun with `pool.begin`), sent the way it takes jobs (whole,
    /// or streamed), ended in the pool and counted in the metrics. A completed job's output is
    /// written here; a streamed one's chunks are out already, its result their aggregate.
    private func attempt(
        _ index: Int, client: any UpstreamJobs, request: JobRequest, output: JobOutputWriter, context: JobContext,
        headers: [(name: String, value: String)]
    ) async throws -> UpstreamOutcome {
        let name = pool.upstreams[index].name
        let streams = pool.upstreams[index].streams
        let started = ContinuousClock.now
        let (outcome, pause) =
            streams
            ? await stream(client, name: name, index: index, request: request, output: output, context: context, headers: headers)
            : await call(client, name: name, index: index, request: request, context: context, headers: headers)
        let (breaker, opened) = pool.end(index, outcome, pause: pause)
        metrics.call(name, outcome, elapsed: .now - started, metrics: context.metrics)
        metrics.breaker(name, breaker, opened: opened, metrics: context.metrics)
        if opened { context.logger.warning("Gateway: \(name)'s breaker opened") }
        if case .completed(let value) = outcome, !streams { try output.respond(value ?? .null) }
        return outcome
    }

    /// One call: `/runsync`, then `/status` until the job is final or the time is up. Returns the
    /// outcome and, after a 429, how long to leave the upstream alone.
    private func call(
        _ client: any UpstreamJobs, name: String, index: Int, request: JobRequest, context: JobContext, headers: [(name: String, value: String)]
    ) async -> (UpstreamOutcome, Duration?) {
        let deadline = min(context.deadline ?? .now + pool.upstreams[index].timeout, .now + pool.upstreams[index].timeout)
        // What bounds this call, for messages: the upstream's timeout_seconds or the job's executionTimeout.
        let limit = deadline - .now
        var id: String?
        do {
            // The call's own deadline bounds the submission too: an upstream that holds the
            // request open (or never answers) must not hold the job past it.
            // (libcurl's own timeout: a timer task per call would live on until its deadline.)
            let wait = max(.seconds(1), min(deadline - .now, .seconds(90)))
            var report: JobStatusReport
            do {
                report = try await client.runSync(request, wait: wait, timeout: max(.milliseconds(1), deadline - .now), headers: headers)
            } catch let error as EndpointClientError where !error.wasNotSent && ContinuousClock.now >= deadline {
                return (.lost("\(name) did not answer within \(limit) (timeout_seconds or executionTimeout); the job may have run there, so it was not sent elsewhere (\(error.reason))"), nil)
            }
            id = report.id
            var attempt = 0
            while !report.status.isFinal {
                let pause = schedule.delay(attempt: attempt)
                attempt += 1
                guard ContinuousClock.now + pause < deadline else {
                    // In the background: a slow /cancel must not hold the job past its limit.
                    let id = report.id
                    Task { try? await client.cancel(id) }
                    return (.outOfTime("\(name) did not finish job \(report.id) in time (executionTimeout or \(limit)); it was cancelled there"), nil)
                }
                try await Task.sleep(for: pause)
                do {
                    report = try await client.status(report.id)
                } catch let error as EndpointClientError where error.isTransient {
                    // The upstream holds the job; a missed poll is tried again at the next one.
                    continue
                }
            }
            switch report.status {
            case .completed: return (.completed(report.output), nil)
            case .timedOut: return (.retriable("job \(report.id) timed out there"), nil)
            default: return (.failed("\(name): job \(report.id) ended \(report.status.rawValue): \(report.error ?? "no error given")"), nil)
            }
        } catch {
            return await failure(error, client: client, id: id, name: name, chunksSent: false)
        }
    }

    /// What a call that threw came to. Sent elsewhere only when that is safe: the upstream never
    /// accepted the job, or it died with it and no chunk of it is out yet.
    private func failure(_ error: any Error, client: any UpstreamJobs, id: String?, name: String, chunksSent: Bool) async -> (UpstreamOutcome, Duration?) {
        if error is CancellationError { return (cancelled(client, id: id, name: name), nil) }
        guard let error = error as? EndpointClientError else { return (.lost("\(name): \(error)"), nil) }
        if error.isCancellation || Task.isCancelled { return (cancelled(client, id: id, name: name), nil) }
        if id == nil, error.neverAccepted {
            return (.retriable(error.reason), error.httpStatus == 429 ? .seconds(1) : nil)
        }
        if id == nil, let status = error.httpStatus, (400..<500).contains(status) || status == 508 {
            return (.refused("\(name) refused the job: \(error.reason)"), nil)
        }
        if chunksSent { return (.lost("\(name): \(error.reason) (after chunks were passed on)"), nil) }
        // The answer was lost. If the upstream now refuses connections, it died with the job
        // (a killed worker's jobs die with it): run it elsewhere, at least once, as a fleet
        // runs a dead worker's job again. Otherwise it may still run there: not sent twice.
        if await Self.isGone(client) {
            return (.retriable("\(name) went away while running the job (\(error.reason))"), nil)
        }
        return (.lost("\(name): \(error.reason) (the job may have run there; it was not sent elsewhere)"), nil)
    }

    /// A job sent to `/v2/{upstream}/…`: that upstream only, whatever the rules say, and no
    /// fallback (the client chose it); its breaker still counts the call.
    private func pinned(
        _ index: Int, client: any UpstreamJobs, job: Job, output: JobOutputWriter, context: JobContext, headers: [(name: String, value: String)]
    ) async throws {
        let name = pool.upstreams[index].name
        let request = try Self.forwarded(job)
        switch pool.begin(index, fallback: false) {
        case .admitted: break
        case .full: throw GatewayError("\(name) has max_in_flight calls under way already; try again shortly, or send the job to the gateway itself")
        default: throw GatewayError("\(name) is unavailable now (its breaker is open after failures); try again shortly, or send the job to the gateway itself")
        }
        switch try await attempt(index, client: client, request: request, output: output, context: context, headers: headers) {
        case .completed: return
        case .failed(let message), .refused(let message), .lost(let message), .outOfTime(let message): throw GatewayError(message)
        case .retriable(let reason): throw GatewayError("\(name) did not take the job: \(reason)")
        }
    }

    /// A job on an upstream whose jobs stream: `/run`, then `/stream` polls, each chunk passed on
    /// as it comes. Before the first chunk is out the usual fallback rules hold; after it, none:
    /// a failure then ends the stream with an error.
    private func stream(
        _ client: any UpstreamJobs, name: String, index: Int, request: JobRequest, output: JobOutputWriter, context: JobContext,
        headers: [(name: String, value: String)]
    ) async -> (UpstreamOutcome, Duration?) {
        let limit = pool.upstreams[index].timeout
        let deadline = min(context.deadline ?? .now + limit, .now + limit)
        var id: String?
        var sent = false
        do {
            let queued: JobStatusReport
            do {
                queued = try await client.run(request, timeout: max(.milliseconds(1), deadline - .now), headers: headers)
            } catch let error as EndpointClientError where !error.wasNotSent && ContinuousClock.now >= deadline {
                return (.lost("\(name) did not answer within \(limit); the job may have been queued there, so it was not sent elsewhere (\(error.reason))"), nil)
            }
            id = queued.id
            var attempt = 0
            while true {
                let (status, chunks) = try await client.stream(queued.id)
                if !chunks.isEmpty {
                    if !sent { output.beginStream() }
                    sent = true
                    for chunk in chunks { try await output.yield(chunk) }
                    attempt = 0
                }
                if status.isFinal {
                    switch status {
                    case .completed: return (.completed(nil), nil)
                    case .timedOut where !sent: return (.retriable("job \(queued.id) timed out there"), nil)
                    default:
                        let report = try? await client.status(queued.id)
                        return (.failed("\(name): job \(queued.id) ended \(status.rawValue): \(report?.error ?? "no error given")"), nil)
                    }
                }
                let pause = min(schedule.delay(attempt: attempt), .milliseconds(500))
                attempt += 1
                guard ContinuousClock.now + pause < deadline else {
                    let id = queued.id
                    Task { try? await client.cancel(id) }
                    return (.outOfTime("\(name) did not finish job \(queued.id) in time; it was cancelled there"), nil)
                }
                try await Task.sleep(for: pause)
            }
        } catch {
            return await failure(error, client: client, id: id, name: name, chunksSent: sent)
        }
    }

    /// An MCP tool call forwarded to the upstream that lists the tool; its progress comes back as
    /// the job's, its result is passed on as the upstream gave it. The call counts for the
    /// upstream's breaker; it is never sent to another upstream (a tool lives on one).
    private func forward(tool name: String, arguments: JSONValue, tools: MCPUpstreams, output: JobOutputWriter, context: JobContext) async throws {
        guard let (index, client, tool) = tools.target(name) else {
            tools.refreshSoon()
            throw GatewayError("the tool \(name) is no longer offered by any upstream")
        }
        let upstream = pool.upstreams[index].name
        switch pool.begin(index, fallback: false) {
        case .admitted: break
        case .full: throw GatewayError("\(upstream)'s MCP server has max_in_flight calls under way already; try again shortly")
        default: throw GatewayError("\(upstream)'s MCP server is unavailable now (its breaker is open after failures); try again shortly")
        }
        do {
            let result = try await client.callTool(tool, arguments: arguments) { params in
                // The upstream's token is the gateway's own: the client's is put back by MCP.
                guard case .object(var fields) = params else { return }
                fields["progressToken"] = nil
                context.progress(.object(fields))
            }
            pool.end(index, .completed(nil))
            try output.respond(result)
        } catch is CancellationError {
            pool.end(index, .outOfTime("cancelled"))
            throw CancellationError()
        } catch let failure as MCPUpstreamClient.Failure where failure.reached {
            // The server answered: it works, but the call did not.
            pool.end(index, .failed(failure.description))
            tools.refreshSoon()
            throw GatewayError("\(upstream): \(failure.description)")
        } catch {
            let (_, opened) = pool.end(index, .retriable("\(error)"))
            tools.refreshSoon()
            throw GatewayError("\(upstream)'s MCP server could not be reached: \(error)\(opened ? "; its breaker is now open" : "")")
        }
    }

    /// Whether the upstream refuses connections now (a dead process), by one health request.
    static func isGone(_ client: any UpstreamJobs) async -> Bool {
        do {
            _ = try await client.health(timeout: .seconds(2))
            return false
        } catch let error as EndpointClientError {
            return error.wasNotSent
        } catch {
            return false
        }
    }

    /// `body`'s value, or nil when `deadline` passes first (`body` is then cancelled).
    static func within<T: Sendable>(_ deadline: ContinuousClock.Instant, _ body: @escaping @Sendable () async throws -> T) async throws -> T? {
        try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask { try await body() }
            group.addTask {
                try await Task.sleep(until: deadline)
                return nil
            }
            defer { group.cancelAll() }
            return try await group.next() ?? nil
        }
    }

    /// The gateway job was cancelled (`/cancel`, or its client went): cancel the upstream's too.
    private func cancelled(_ client: any UpstreamJobs, id: String?, name: String) -> UpstreamOutcome {
        if let id { Task { try? await client.cancel(id) } }
        return .outOfTime("the job was cancelled\(id.map { "; \(name)'s job \($0) is cancelled too" } ?? "")")
    }

    /// A random id for this process, in the chains of the requests it sends upstream.
    static func newInstanceID() -> String {
        var generator = SystemRandomNumberGenerator()
        return String(generator.next() as UInt64, radix: 16)
    }

    /// The job as sent upstream: its input without the gateway's own `tier`, and its policy; not
    /// its webhook (the gateway calls it) and nothing of the inbound request's credentials.
    static func forwarded(_ job: Job) throws -> JobRequest {
        var input = job.input
        if case .object(var fields) = input, fields["tier"] != nil {
            fields["tier"] = nil
            input = .object(fields)
        }
        var body: [String: JSONValue] = ["input": input]
        if let policy = job.raw["policy"] { body["policy"] = policy }
        do {
            return try JobRequest(json: .object(body))
        } catch {
            throw GatewayError("the job cannot be forwarded: \(error)")
        }
    }
}

/// A gateway job that could not be done: the message says what is wrong.
struct GatewayError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

import WorkerJSON

/// Lifts a typed handler into the raw shape.
struct CodableHandlerAdapter<Handler: JobHandler>: RawJobHandler {
    let handler: Handler

    func handle(_ job: Job, output: JobOutputWriter, context: JobContext) async throws {
        let input = try job.input.decode(as: Handler.Input.self)
        try output.respond(try JSONValue(encoding: try await handler.handle(input, context: context)))
    }

    func start() async throws { try await handler.start() }
    func shutdown() async throws { try await handler.shutdown() }
    var isHealthy: Bool { handler.isHealthy }
}

/// Lifts a JSON handler into the raw shape.
struct JSONHandlerAdapter<Handler: JSONJobHandler>: RawJobHandler {
    let handler: Handler

    func handle(_ job: Job, output: JobOutputWriter, context: JobContext) async throws {
        try output.respond(try await handler.handle(job.input, context: context))
    }

    func start() async throws { try await handler.start() }
    func shutdown() async throws { try await handler.shutdown() }
    var isHealthy: Bool { handler.isHealthy }
}

/// Lifts a streaming handler into the raw shape.
struct StreamingHandlerAdapter<Handler: StreamingJobHandler>: RawJobHandler {
    let handler: Handler

    func handle(_ job: Job, output: JobOutputWriter, context: JobContext) async throws {
        output.beginStream()
        try await handler.handle(job.input, context: context, stream: output)
    }

    func start() async throws { try await handler.start() }
    func shutdown() async throws { try await handler.shutdown() }
    var isHealthy: Bool { handler.isHealthy }
}

/// A closure over JSON as a handler, so a worker is a few lines.
struct ClosureHandler: RawJobHandler {
    let body: @Sendable (JSONValue, JobContext) async throws -> JSONValue

    func handle(_ job: Job, output: JobOutputWriter, context: JobContext) async throws {
        try output.respond(try await body(job.input, context))
    }
}

/// A closure over typed input and output as a handler.
struct TypedClosureHandler<Input: Decodable, Output: Encodable>: RawJobHandler {
    let body: @Sendable (Input, JobContext) async throws -> Output

    func handle(_ job: Job, output: JobOutputWriter, context: JobContext) async throws {
        let input = try job.input.decode(as: Input.self)
        try output.respond(try JSONValue(encoding: try await body(input, context)))
    }
}

/// A streaming closure as a handler.
struct StreamingClosureHandler: RawJobHandler {
    let body: @Sendable (JSONValue, JobContext, JobOutputWriter) async throws -> Void

    func handle(_ job: Job, output: JobOutputWriter, context: JobContext) async throws {
        output.beginStream()
        try await body(job.input, context, output)
    }
}

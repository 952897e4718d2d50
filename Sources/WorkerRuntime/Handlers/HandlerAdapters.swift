/// Lifts a typed handler into the raw shape.
public struct CodableHandlerAdapter<Handler: JobHandler>: RawJobHandler {
    public let handler: Handler
    public init(_ handler: Handler) { self.handler = handler }

    public func handle(_ job: Job, output: JobOutputWriter, context: JobContext) async throws {
        let input = try job.input.decode(as: Handler.Input.self)
        try output.respond(try JSONValue(encoding: try await handler.handle(input, context: context)))
    }

    public func start() async throws { try await handler.start() }
}

/// Lifts a JSON handler into the raw shape.
public struct JSONHandlerAdapter<Handler: JSONJobHandler>: RawJobHandler {
    public let handler: Handler
    public init(_ handler: Handler) { self.handler = handler }

    public func handle(_ job: Job, output: JobOutputWriter, context: JobContext) async throws {
        try output.respond(try await handler.handle(job.input, context: context))
    }

    public func start() async throws { try await handler.start() }
}

/// Lifts a streaming handler into the raw shape.
public struct StreamingHandlerAdapter<Handler: StreamingJobHandler>: RawJobHandler {
    public let handler: Handler
    public init(_ handler: Handler) { self.handler = handler }

    public func handle(_ job: Job, output: JobOutputWriter, context: JobContext) async throws {
        output.beginStream()
        try await handler.handle(job.input, context: context, stream: output)
    }

    public func start() async throws { try await handler.start() }
}

/// A closure as a handler, so a worker is a few lines.
public struct ClosureHandler: RawJobHandler {
    private let body: @Sendable (JSONValue, JobContext) async throws -> JSONValue
    public init(_ body: @escaping @Sendable (JSONValue, JobContext) async throws -> JSONValue) {
        self.body = body
    }

    public func handle(_ job: Job, output: JobOutputWriter, context: JobContext) async throws {
        try output.respond(try await body(job.input, context))
    }
}

/// A streaming closure as a handler.
public struct StreamingClosureHandler: RawJobHandler {
    private let body: @Sendable (JSONValue, JobContext, JobOutputWriter) async throws -> Void
    public init(_ body: @escaping @Sendable (JSONValue, JobContext, JobOutputWriter) async throws -> Void) {
        self.body = body
    }

    public func handle(_ job: Job, output: JobOutputWriter, context: JobContext) async throws {
        output.beginStream()
        try await body(job.input, context, output)
    }
}

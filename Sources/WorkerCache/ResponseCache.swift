import CoreMetrics
import Logging
import WorkerJSON
import WorkerRuntime

/// What the cache feature needs at run time: the backend, the settings, the single-flight table
/// and the handler's rules for what to cache.
package final class ResponseCache: Sendable {
    package let backend: any ResponseCacheBackend
    package let configuration: ResponseCacheConfiguration
    package let handlerName: String
    package let flights = SingleFlight()
    let policy: ResponseCachePolicy

    package init(backend: any ResponseCacheBackend, configuration: ResponseCacheConfiguration, handlerName: String, policy: ResponseCachePolicy) {
        self.backend = backend
        self.configuration = configuration
        self.handlerName = handlerName
        self.policy = policy
    }

    /// The cached answer, or nil on a miss; a failing backend is logged and counts as a miss.
    func lookup(_ key: String, logger: Logger) async -> (JSONValue?, failed: Bool) {
        do {
            guard let bytes = try await backend.get(key) else { return (nil, false) }
            return (try JSONValue.parse(bytes), false)
        } catch {
            logger.warning("Response cache (\(backend.name)) lookup failed, the job runs uncached: \(error)")
            return (nil, true)
        }
    }

    /// Stores an answer for `ttl`; a failure is logged, never the job's.
    func store(_ key: String, _ answer: JSONValue, logger: Logger) async {
        let ttl = policy.isNegative(answer) ? configuration.negativeTTL : configuration.ttl
        guard ttl > .zero else { return }
        do {
            try await backend.set(key, try answer.serialized(), ttl: ttl)
        } catch {
            logger.warning("Response cache (\(backend.name)) store failed: \(error)")
        }
    }
}

/// Which jobs and answers a handler lets the cache keep.
public struct ResponseCachePolicy: Sendable {
    /// Jobs whose answers may be cached (default: all). Writes and anything with side effects
    /// must say no.
    public var isCacheable: @Sendable (JSONValue) -> Bool
    /// Answers that mean "nothing found", kept only for the negative TTL (default: none).
    public var isNegative: @Sendable (JSONValue) -> Bool

    public init(
        isCacheable: @escaping @Sendable (JSONValue) -> Bool = { _ in true },
        isNegative: @escaping @Sendable (JSONValue) -> Bool = { _ in false }
    ) {
        self.isCacheable = isCacheable
        self.isNegative = isNegative
    }
}

/// The handler as the cache wraps it: a hit answers without running the job; concurrent misses
/// share one run; only a single successful answer is stored (errors, error results and streams
/// never are).
struct CachingHandler: RawJobHandler {
    let inner: any RawJobHandler
    let cache: ResponseCache
    let hits: Counter
    let misses: Counter
    let shared: Counter
    let failures: Counter

    func handle(_ job: Job, output: JobOutputWriter, context: JobContext) async throws {
        guard cache.configuration.isEnabled, cache.policy.isCacheable(job.input),
            let key = try? CacheKey.make(handler: cache.handlerName, input: job.input)
        else {
            return try await inner.handle(job, output: output, context: context)
        }
        let (cached, failed) = await cache.lookup(key, logger: context.logger)
        if let cached {
            hits.increment()
            context.logger.debug("Response cache hit")
            return try output.respond(cached)
        }
        (failed ? failures : misses).increment()
        switch await cache.flights.join(key) {
        case .follower(let answer?):
            shared.increment()
            return try output.respond(answer)
        case .follower(nil):
            return try await inner.handle(job, output: output, context: context)
        case .leader:
            var answer: JSONValue?
            do {
                try await inner.handle(job, output: output, context: context)
            } catch {
                cache.flights.finish(key, answer: nil)
                throw error
            }
            if case .value(let value) = output.outcome, !Self.isErrorResult(value) { answer = value }
            // Stored before the flight lands, so a job arriving in between finds it cached.
            if let answer, !failed { await cache.store(key, answer, logger: context.logger) }
            cache.flights.finish(key, answer: answer)
        }
    }

    /// `{"error": ...}` with a truthy error fails the job on RunPod: never cached.
    static func isErrorResult(_ value: JSONValue) -> Bool {
        value["error"].map(\.isTruthy) ?? false
    }

    func start() async throws { try await inner.start() }
    func shutdown() async throws { try await inner.shutdown() }
    var isHealthy: Bool { inner.isHealthy }
}

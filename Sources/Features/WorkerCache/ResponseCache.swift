import CoreMetrics
import Logging
import WorkerJSON
import WorkerRuntime

/// What the cache feature needs at run time: the near (in-process) cache, the shared backend
/// when there is one, the settings, the single-flight table and the handler's rules.
package final class ResponseCache: Sendable {
    package let near: NearCache
    package let backend: (any ResponseCacheBackend)?
    package let configuration: ResponseCacheConfiguration
    package let handlerName: String
    package let flights = SingleFlight()
    let policy: ResponseCachePolicy

    package init(
        near: NearCache, backend: (any ResponseCacheBackend)?, configuration: ResponseCacheConfiguration, handlerName: String,
        policy: ResponseCachePolicy
    ) {
        self.near = near
        self.backend = backend
        self.configuration = configuration
        self.handlerName = handlerName
        self.policy = policy
    }

    /// For logs: where answers are kept.
    var description: String { backend.map { "in-process, in front of \($0.name)" } ?? "in-process" }

    /// The cached answer, or nil on a miss: from this process, else from the backend (then kept
    /// here until the backend's copy expires). A failing backend is logged and counts as a miss.
    func lookup(_ key: String, logger: Logger) async -> (JSONValue?, failed: Bool) {
        if let answer = near.get(key) { return (answer, false) }
        guard let backend else { return (nil, false) }
        do {
            guard let (bytes, timeToLive) = try await backend.get(key) else { return (nil, false) }
            let answer = try JSONValue.parse(bytes)
            near.set(key, answer, size: bytes.count, ttl: timeToLive ?? ttl(for: answer))
            return (answer, false)
        } catch {
            log(error, "lookup failed, the job runs uncached", logger)
            return (nil, true)
        }
    }

    /// Stores an answer for its TTL, here and in the backend; a failure is logged, never the job's.
    func store(_ key: String, _ answer: JSONValue, logger: Logger) async {
        let ttl = ttl(for: answer)
        guard ttl > .zero, let bytes = try? answer.serialized() else { return }
        near.set(key, answer, size: bytes.count, ttl: ttl)
        guard let backend else { return }
        do {
            try await backend.set(key, bytes, ttl: ttl)
        } catch {
            log(error, "store failed", logger)
        }
    }

    /// A backend failure is a warning; while the backend is skipped after one, only a debug line
    /// (an outage would otherwise log twice per job).
    private func log(_ error: any Error, _ what: String, _ logger: Logger) {
        guard let backend else { return }
        if error is CacheUnavailable {
            logger.debug("Response cache (\(backend.name)) \(what): \(error)")
        } else {
            logger.warning("Response cache (\(backend.name)) \(what): \(error)")
        }
    }

    private func ttl(for answer: JSONValue) -> Duration {
        policy.isNegative(answer) ? configuration.negativeTTL : configuration.ttl
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
        let logger = context.logger
        let (cached, failed) = await cache.lookup(key, logger: logger)
        if let cached {
            hits.increment()
            logger.debug("Response cache hit")
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
            if let answer { await cache.store(key, answer, logger: logger) }
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

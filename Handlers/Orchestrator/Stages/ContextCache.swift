import WorkerJSON

/// Documentation fetched for the context stage, kept for `CONTEXT7_CACHE_TTL`: leads of one
/// industry ask the same question, and each ask is a job on the context7 endpoint (on RunPod, a
/// billed request). Concurrent asks of the same question share one job; failures are not kept.
actor ContextCache {
    private struct Entry {
        let value: JSONValue
        let expires: ContinuousClock.Instant
    }

    let ttl: Duration
    let capacity: Int
    private var entries: [String: Entry] = [:]
    private var inFlight: [String: Task<JSONValue, any Error>] = [:]

    init(ttl: Duration, capacity: Int = 256) {
        self.ttl = ttl
        self.capacity = capacity
    }

    func value(for key: String, _ fetch: @escaping @Sendable () async throws -> JSONValue) async throws -> JSONValue {
        guard ttl > .zero else { return try await fetch() }
        if let entry = entries[key] {
            if entry.expires > .now { return entry.value }
            entries[key] = nil
        }
        if let running = inFlight[key] { return try await running.value }
        let task = Task { try await fetch() }
        inFlight[key] = task
        defer { inFlight[key] = nil }
        let value = try await task.value
        if entries.count >= capacity {
            // Expired entries go first; if none, the one closest to expiring.
            let now = ContinuousClock.now
            entries = entries.filter { $0.value.expires > now }
            if entries.count >= capacity, let oldest = entries.min(by: { $0.value.expires < $1.value.expires })?.key { entries[oldest] = nil }
        }
        entries[key] = Entry(value: value, expires: .now + ttl)
        return value
    }
}

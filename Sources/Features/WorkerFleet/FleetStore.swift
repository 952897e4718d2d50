#if canImport(Glibc)
import Glibc
#endif
import EndpointAPI
import RedisClient
import WorkerJSON
import WorkerRuntime

/// The fleet's steps on Redis, each one script (`FleetScripts`) or one pipelined read: what a
/// gateway and a worker do to a job. Errors are `RedisError` (Redis unreachable, a refused
/// command) or `FleetError` (a record no fleet process wrote).
struct FleetStore: Sendable {
    let redis: FleetRedis
    var keys: FleetKeys { redis.keys }
    var settings: FleetSettings { redis.settings }

    // MARK: Gateway

    enum Submitted: Sendable {
        case queued
        /// The `Idempotency-Key` named this job already.
        case known(String)
        /// The queue holds this many bytes of input, past the budget.
        case full(queuedBytes: Int)
    }

    /// Queues `job` (its JSON as a worker reads it: id, input, webhook, policy).
    func submit(
        id: String, job: [UInt8], inputBytes: Int, sync: Bool, ttl: Duration, retention: Duration, executionTimeout: Duration,
        queueLimit: Int, idempotencyKey: String?
    ) async throws -> Submitted {
        try await submit(
            id: id, job: job, inputBytes: inputBytes, sync: sync, ttl: ttl, retention: retention, executionTimeout: executionTimeout,
            queueLimit: queueLimit, idempotencyKey: idempotencyKey, startingFor: nil
        ).submitted
    }

    /// `submit`, by a gateway with a free slot (`startingFor`: its consumer), which starts the
    /// oldest queued job (usually this one) in the same step: the job it is to run.
    func submit(
        id: String, job: [UInt8], inputBytes: Int, sync: Bool, ttl: Duration, retention: Duration, executionTimeout: Duration,
        queueLimit: Int, idempotencyKey: String?, startingFor consumer: String?
    ) async throws -> (submitted: Submitted, started: [Started]) {
        let jobKey = keys.job(id)
        let idempotency = idempotencyKey.map(keys.idempotency) ?? jobKey
        var arguments: [RedisArgument] = [
            RedisArgument(id), RedisArgument(bytes: job), RedisArgument(inputBytes), sync ? "1" : "0",
            RedisArgument(settings.maxAttempts), RedisArgument(RedisStreams.milliseconds(ttl)), RedisArgument(queueLimit),
            idempotencyKey == nil ? "0" : "1", RedisArgument(RedisStreams.milliseconds(retention)), RedisArgument(RedisStreams.milliseconds(retention)),
            RedisArgument(RedisStreams.milliseconds(executionTimeout)),
        ]
        if let consumer {
            arguments += [RedisArgument(FleetKeys.group), RedisArgument(consumer), RedisArgument(keys.events), RedisArgument(keys.prefix)]
        }
        let reply = try await eval(
            "submit", FleetScripts.submit, keys: [keys.queue, keys.stats, jobKey, idempotency, keys.dead], arguments: arguments)
        guard case .array(let items) = reply, let first = items.first?.string else { throw FleetError.unexpectedReply("submit", reply) }
        switch first {
        case "ok" where items.count >= 2 && (items.count - 2) % 3 == 0:
            return (.queued, try Self.started(items.dropFirst(2), reply: reply, step: "submit"))
        case "known" where items.count == 2: return (.known(items[1].string ?? ""), [])
        case "full" where items.count == 2: return (.full(queuedBytes: Int(items[1].string ?? "") ?? 0), [])
        default: throw FleetError.unexpectedReply("submit", reply)
        }
    }

    /// Jobs a script started: id, attempt, JSON, per job.
    static func started(_ items: ArraySlice<RedisValue>, reply: RedisValue, step: String) throws -> [Started] {
        var started: [Started] = []
        started.reserveCapacity(items.count / 3)
        var index = items.startIndex
        while index + 2 < items.endIndex {
            guard let id = items[index].string, let attempt = items[index + 1].string.flatMap({ Int($0) }),
                case .bulk(let job) = items[index + 2]
            else { throw FleetError.unexpectedReply(step, reply) }
            started.append(Started(id: id, attempt: attempt, job: job))
            index += 3
        }
        return started
    }

    /// What `/status` reports; nil for an unknown (or expired) job.
    func report(_ id: String) async throws -> JobStatusReport? {
        let key = keys.job(id)
        let reply = try await naming(key) {
            try await redis.pipeline().send(
                ["HMGET", RedisArgument(key), "status", "created", "started", "finished", "result", "progress", "worker"])
        }
        guard case .array(let fields) = reply, fields.count == 7 else { throw FleetError.unexpectedReply("HMGET", reply) }
        guard let statusText = fields[0].string else { return nil }
        func bytes(_ value: RedisValue) -> [UInt8]? {
            if case .bulk(let bytes) = value { return bytes }
            return nil
        }
        var report = try Self.report(
            id: id, key: key, status: statusText, created: fields[1].string, started: fields[2].string, finished: fields[3].string,
            worker: fields[6].string, result: bytes(fields[4]), progress: bytes(fields[5]))
        // A stream the handler did not aggregate: its output is its chunks, as --local's.
        if report.status == .completed, report.output == [] { report.output = .array(try await chunks(id, from: 0)) }
        return report
    }

    /// A report from a record's fields (times are Redis's `TIME`, in ms).
    static func report(
        id: String, key: String, status statusText: String, created: String?, started: String?, finished: String?, worker: String?,
        result: [UInt8]?, progress: [UInt8]?
    ) throws -> JobStatusReport {
        guard let status = JobStatus(rawValue: statusText) else {
            throw FleetError.damagedRecord(key, "its status is \"\(statusText)\", which is none of RunPod's")
        }
        let now = nowMilliseconds()
        let createdAt = created.flatMap { Int64($0) } ?? now
        let startedAt = started.flatMap { Int64($0) }
        let finishedAt = finished.flatMap { Int64($0) }
        var report = JobStatusReport(id: id, status: status)
        if let startedAt {
            report.delayTime = max(0, startedAt - createdAt)
            report.executionTime = max(0, (finishedAt ?? now) - startedAt)
            report.workerID = worker
        } else {
            report.delayTime = max(0, (finishedAt ?? now) - createdAt)
        }
        if status.isFinal, let result, !result.isEmpty {
            let parsed: JSONValue
            do {
                parsed = try JSONValue.parse(result)
            } catch {
                throw FleetError.damagedRecord(key, "its result is not JSON (\(error))")
            }
            guard case .object = parsed else { throw FleetError.damagedRecord(key, "its result is \(parsed.typeName), not an object") }
            report.output = parsed["output"]
            if let error = parsed["error"] { report.error = ResultBody.errorText(error) }
        } else if !status.isFinal, let progress {
            report.output = try? JSONValue.parse(progress)
        }
        return report
    }

    /// The final report a finish message carries (`f`: status, created, started, finished,
    /// worker, result, one per line after the id); nil when it cannot stand for the record (a
    /// stream whose output is its chunks, an unreadable message).
    static func report(fromMessage lines: ArraySlice<UInt8>, id: String, key: String) -> JobStatusReport? {
        var fields: [ArraySlice<UInt8>] = []
        var rest = lines
        while fields.count < 5, let newline = rest.firstIndex(of: UInt8(ascii: "\n")) {
            fields.append(rest[rest.startIndex..<newline])
            rest = rest[(newline + 1)...]
        }
        guard fields.count == 5 else { return nil }
        func text(_ slice: ArraySlice<UInt8>) -> String? { slice.isEmpty ? nil : String(decoding: slice, as: UTF8.self) }
        guard let status = text(fields[0]),
            let report = try? report(
                id: id, key: key, status: status, created: text(fields[1]), started: text(fields[2]), finished: text(fields[3]),
                worker: text(fields[4]), result: Array(rest), progress: nil),
            report.status.isFinal, !(report.status == .completed && report.output == [])
        else { return nil }
        return report
    }

    /// A job's chunks from `index` on.
    func chunks(_ id: String, from index: Int) async throws -> [JSONValue] {
        let key = keys.chunks(id)
        let reply = try await redis.pipeline().send(["LRANGE", RedisArgument(key), RedisArgument(index), "-1"])
        guard case .array(let items) = reply else { throw FleetError.unexpectedReply("LRANGE", reply) }
        return try items.map { item in
            guard case .bulk(let bytes) = item, let value = try? JSONValue.parse(bytes) else {
                throw FleetError.damagedRecord(key, "a chunk is not JSON")
            }
            return value
        }
    }

    /// The last progress update of a running job.
    func progress(_ id: String) async throws -> JSONValue? {
        let key = keys.job(id)
        let reply = try await redis.pipeline().send(["HGET", RedisArgument(key), "progress"])
        guard case .bulk(let bytes) = reply else { return nil }
        return try? JSONValue.parse(bytes)
    }

    /// `/stream`: status, result and the chunks since the last poll; nil for an unknown job.
    func poll(_ id: String) async throws -> (status: JobStatus, error: String?, chunks: [JSONValue])? {
        let key = keys.job(id)
        let reply = try await eval("poll", FleetScripts.poll, keys: [key, keys.chunks(id)], arguments: [])
        if reply.isNull { return nil }
        guard case .array(let items) = reply, items.count >= 2, let statusText = items[0].string else {
            throw FleetError.unexpectedReply("poll", reply)
        }
        guard let status = JobStatus(rawValue: statusText) else {
            throw FleetError.damagedRecord(key, "its status is \"\(statusText)\", which is none of RunPod's")
        }
        var error: String?
        if case .bulk(let bytes) = items[1], !bytes.isEmpty {
            guard let result = try? JSONValue.parse(bytes), case .object = result else {
                throw FleetError.damagedRecord(key, "its result is not a JSON object")
            }
            if let value = result["error"] { error = ResultBody.errorText(value) }
        }
        let chunks = items.dropFirst(2).compactMap { item -> JSONValue? in
            guard case .bulk(let bytes) = item else { return nil }
            return try? JSONValue.parse(bytes)
        }
        return (status, error, chunks)
    }

    /// Cancels or times out a job; its status afterwards (unchanged when already final), nil
    /// when unknown. `attempt` limits it to that run (a worker timing out its own run).
    func stop(_ id: String, as status: JobStatus, error: String?, attempt: Int? = nil) async throws -> JobStatus? {
        var result: [UInt8] = []
        if let error { result = (try? JSONValue.object(["error": .string(error)]).serialized()) ?? [] }
        let reply = try await eval(
            "stop", FleetScripts.stop, keys: [keys.job(id), keys.queue, keys.stats],
            arguments: [
                RedisArgument(FleetKeys.group), RedisArgument(status.rawValue), RedisArgument(bytes: result), RedisArgument(keys.events),
                RedisArgument(keys.cancels), RedisArgument(id), RedisArgument(attempt.map(String.init) ?? ""),
            ])
        if reply.isNull { return nil }
        guard let text = reply.string else { throw FleetError.unexpectedReply("stop", reply) }
        guard let after = JobStatus(rawValue: text) else {
            throw FleetError.damagedRecord(keys.job(id), "its status is \"\(text.prefix(40))\", which is none of RunPod's")
        }
        return after
    }

    enum Retried: Sendable {
        case queued, unknown
        case refused(JobStatus)
    }

    func retry(_ id: String, ttl: Duration) async throws -> Retried {
        let reply = try await eval(
            "retry", FleetScripts.retry, keys: [keys.job(id), keys.queue, keys.stats, keys.chunks(id)],
            arguments: [RedisArgument(id), RedisArgument(RedisStreams.milliseconds(ttl))])
        if reply.isNull { return .unknown }
        let parts = Self.strings(reply)
        switch parts.first {
        case "ok": return .queued
        case "refuse" where parts.count == 2:
            guard let status = JobStatus(rawValue: parts[1]) else {
                throw FleetError.damagedRecord(keys.job(id), "its status is \"\(parts[1].prefix(40))\", which is none of RunPod's")
            }
            return .refused(status)
        default: throw FleetError.unexpectedReply("retry", reply)
        }
    }

    /// Removes every job not yet handed to a worker, in rounds of 1,000 entries so Redis is never
    /// held long; how many were removed.
    func purgeQueue() async throws -> Int {
        var removed = 0
        while true {
            let reply = try await eval(
                "purge", FleetScripts.purge, keys: [keys.queue, keys.stats],
                arguments: [RedisArgument(FleetKeys.group), RedisArgument(keys.prefix), RedisArgument(keys.events), 1000])
            guard case .array(let counts) = reply, counts.count == 2, let count = counts[0].integer, let scanned = counts[1].integer else {
                throw FleetError.unexpectedReply("purge", reply)
            }
            removed += Int(count)
            if scanned == 0 { return removed }
        }
    }

    /// `/health`: the endpoint's counts, and its workers from their beats (one that missed three
    /// beats is gone; one silent for an hour is forgotten).
    func health() async throws -> JSONValue {
        let commands = try await commands()
        let replies = try await naming("\(keys.stats), \(keys.queue) or \(keys.workers)") {
            try await commands.pipeline(
            [
                ["HGETALL", RedisArgument(keys.stats)], ["XPENDING", RedisArgument(keys.queue), RedisArgument(FleetKeys.group)],
                ["HGETALL", RedisArgument(keys.workers)],
            ], keys: [RedisArgument(keys.queue)])
        }
        for (reply, key) in zip(replies, [keys.stats, keys.queue, keys.workers]) {
            if case .error(let message) = reply {
                if message.hasPrefix("WRONGTYPE") { throw FleetError.damagedRecord(key, "it holds another type (\(message))") }
                throw RedisError.server(redis.server, "health", message)
            }
        }
        let stats = Self.hash(replies[0])
        var running: Int64 = 0
        if case .array(let summary) = replies[1], let count = summary.first?.integer { running = count }
        func count(_ name: String) -> Int64 { max(0, stats[name].flatMap { Int64($0) } ?? 0) }
        let now = Self.nowMilliseconds()
        let alive = Int64(RedisStreams.milliseconds(settings.heartbeat)) * 3 + 1000
        var idle: Int64 = 0
        var busy: Int64 = 0
        var forgotten: [RedisArgument] = []
        for (worker, beat) in Self.hash(replies[2]) {
            let parts = beat.split(separator: " ").compactMap { Int64($0) }
            guard let last = parts.first else { continue }
            if now - last > 3_600_000 { forgotten.append(RedisArgument(worker)) }
            guard now - last <= alive else { continue }
            if parts.count > 1, parts[1] > 0 { busy += 1 } else { idle += 1 }
        }
        if !forgotten.isEmpty { _ = try? await commands.send(["HDEL", RedisArgument(keys.workers)] + forgotten, keys: [RedisArgument(keys.workers)]) }
        return [
            "jobs": [
                "completed": .integer(count("completed")), "failed": .integer(count("failed")), "inProgress": .integer(running),
                "inQueue": .integer(count("queued")), "retried": .integer(count("retried")),
            ],
            "workers": [
                "idle": .integer(idle), "running": .integer(busy), "initializing": 0, "ready": .integer(idle + busy), "throttled": 0,
                "unhealthy": 0,
            ],
        ]
    }

    // MARK: Worker

    /// A job a worker started: its id, the run it is (the fence) and its JSON as the gateway
    /// queued it.
    struct Started: Sendable {
        let id: String
        let attempt: Int
        let job: [UInt8]
    }

    /// Reclaims expired leases (with `reclaim`) and reads new jobs, without blocking; or starts
    /// `entries` a blocked read handed over.
    func take(consumer: String, count: Int, reclaim: Bool, entries: [RedisStreamEntry] = []) async throws -> [Started] {
        var arguments: [RedisArgument] = [
            RedisArgument(FleetKeys.group), RedisArgument(consumer), RedisArgument(consumer), RedisArgument(RedisStreams.milliseconds(settings.lease)),
            RedisArgument(max(1, count)), RedisArgument(keys.prefix), reclaim ? "1" : "0", RedisArgument(keys.events),
        ]
        for entry in entries {
            let id = entry.fields.first { $0.name == "id" }.map { String(decoding: $0.value, as: UTF8.self) } ?? ""
            let bytes = entry.fields.first { $0.name == "b" }.map { String(decoding: $0.value, as: UTF8.self) } ?? "0"
            arguments += [RedisArgument(entry.id), RedisArgument(id), RedisArgument(bytes)]
        }
        let reply = try await eval("take", FleetScripts.take, keys: [keys.queue, keys.stats, keys.dead], arguments: arguments)
        guard case .array(let items) = reply, items.count % 3 == 0 else { throw FleetError.unexpectedReply("take", reply) }
        return try Self.started(items[...], reply: reply, step: "take")
    }

    /// Renews the leases of the jobs a worker holds and records its beat; the ids it no longer
    /// holds.
    func renew(consumer: String, held: [(id: String, attempt: Int)], running: Int, concurrency: Int) async throws -> [String] {
        var arguments: [RedisArgument] = [
            RedisArgument(FleetKeys.group), RedisArgument(consumer), RedisArgument(consumer), RedisArgument("\(running) \(concurrency)"),
            RedisArgument(keys.prefix),
        ]
        for job in held { arguments += [RedisArgument(job.id), RedisArgument(job.attempt)] }
        let reply = try await eval("renew", FleetScripts.renew, keys: [keys.queue, keys.workers], arguments: arguments)
        guard case .array(let items) = reply else { throw FleetError.unexpectedReply("renew", reply) }
        return items.compactMap(\.string)
    }

    enum Finished: Sendable, Equatable {
        /// With the record's times (Redis's `TIME`, ms) and worker, for a report made here.
        case recorded(created: String, started: String, finished: String, worker: String)
        /// Not this run's to finish any more: the status and attempt the job has now.
        case stale(String)
        case gone
    }

    /// A run's final result, fenced by its attempt.
    func finish(_ id: String, attempt: Int, status: JobStatus, result: [UInt8]) async throws -> Finished {
        let reply = try await eval(
            "finish", FleetScripts.finish, keys: [keys.job(id), keys.queue, keys.stats, keys.chunks(id)],
            arguments: [
                RedisArgument(FleetKeys.group), RedisArgument(attempt), RedisArgument(status.rawValue), RedisArgument(bytes: result),
                RedisArgument(keys.events), RedisArgument(id),
            ])
        if case .array(let items) = reply, items.count == 5, items[0].string == "ok" {
            return .recorded(
                created: items[1].string ?? "", started: items[2].string ?? "", finished: items[3].string ?? "", worker: items[4].string ?? "")
        }
        guard let text = reply.string else { throw FleetError.unexpectedReply("finish", reply) }
        if text == "gone" { return .gone }
        return .stale(String(text.dropFirst("stale ".count)))
    }

    /// A chunk (`chunk` true) or progress update of a run, fenced by its attempt; false when the
    /// run no longer holds the job.
    func update(_ id: String, attempt: Int, chunk: Bool, value: [UInt8]) async throws -> Bool {
        let reply = try await eval(
            "update", FleetScripts.update, keys: [keys.job(id), keys.chunks(id)],
            arguments: [RedisArgument(attempt), chunk ? "c" : "p", RedisArgument(bytes: value), RedisArgument(keys.events), RedisArgument(id)])
        return reply.integer == 1
    }

    // MARK: Helpers

    /// A key of another type where the fleet keeps one of its own: a damaged record, named.
    private func naming<T>(_ key: String, _ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as RedisError where error.isServerError && error.reason.hasPrefix("WRONGTYPE") {
            throw FleetError.damagedRecord(key, "it holds another type of value (WRONGTYPE)")
        }
    }

    func commands() async throws -> any RedisCommands { try await redis.commands() }

    /// A script, with `NOGROUP` (the stream or its group deleted under us) mended once.
    private func eval(_ step: String, _ script: LuaScript, keys: [String], arguments: [RedisArgument]) async throws -> RedisValue {
        let pipeline = try await redis.pipeline()
        do {
            return try await pipeline.eval(script, keys: keys, arguments: arguments)
        } catch let error as RedisError where error.isServerError && error.reason.contains("NOGROUP") {
            try await FleetRedis.makeGroup(commands(), keys: self.keys)
            return try await pipeline.eval(script, keys: keys, arguments: arguments)
        }
    }

    static func strings(_ reply: RedisValue) -> [String] {
        guard case .array(let items) = reply else { return [] }
        return items.map { $0.string ?? $0.integer.map(String.init) ?? "" }
    }

    static func hash(_ reply: RedisValue) -> [String: String] {
        guard case .array(let items) = reply else { return [:] }
        var result: [String: String] = [:]
        var index = 0
        while index + 1 < items.count {
            if let name = items[index].string, let value = items[index + 1].string { result[name] = value }
            index += 2
        }
        return result
    }

    /// Wall-clock milliseconds, to compare with the times Redis wrote (`TIME`).
    static func nowMilliseconds() -> Int64 {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return Int64(spec.tv_sec) * 1000 + Int64(spec.tv_nsec) / 1_000_000
    }
}

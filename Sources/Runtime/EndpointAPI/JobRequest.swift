import WorkerJSON

/// A `/run` or `/runsync` body: `{"input": any, "webhook"?: url, "policy"?: {…}}`, plus whatever
/// else the caller sent (`s3Config`, …), which reaches the handler as part of the job object.
public struct JobRequest: Sendable {
    public var input: JSONValue
    public var webhook: String?
    public var policy: JobPolicy
    /// Every key of the body but `input`, as sent.
    public var extra: [String: JSONValue]

    public init(input: JSONValue, webhook: String? = nil, policy: JobPolicy = JobPolicy(), extra: [String: JSONValue] = [:]) {
        self.input = input
        self.webhook = webhook
        self.policy = policy
        self.extra = extra
    }

    /// Validates a request body; the error says what is wrong with it, as a 400 would.
    package init(json body: JSONValue) throws(EndpointAPIError) {
        guard case .object(let fields) = body else {
            throw .invalidRequest("the request body must be a JSON object with an \"input\" key, got \(body.typeName)")
        }
        guard let input = fields.value(forKey: "input") else {
            throw .invalidRequest("the request body has no \"input\" key: send {\"input\": …}")
        }
        var webhook: String?
        if let value = fields.value(forKey: "webhook"), value != .null {
            guard let url = value.stringValue, url.hasPrefix("http://") || url.hasPrefix("https://") else {
                throw .invalidRequest("\"webhook\" must be an http:// or https:// URL")
            }
            webhook = url
        }
        var policy = JobPolicy()
        if let value = fields.value(forKey: "policy"), value != .null {
            policy = try JobPolicy(json: value)
        }
        // Most bodies are just {"input": …}: then there is nothing to copy.
        var extra: [String: JSONValue] = [:]
        if fields.count > 1 {
            extra = fields
            extra["input"] = nil
        }
        self.init(input: input, webhook: webhook, policy: policy, extra: extra)
    }

    /// The body as it goes on the wire.
    package var json: JSONValue {
        var body = extra
        body["input"] = input
        if let webhook { body["webhook"] = .string(webhook) }
        if let policy = policy.json { body["policy"] = policy }
        return .object(body)
    }
}

/// `policy`: per-job limits. Unset fields take the endpoint's defaults (`EndpointLimits`).
public struct JobPolicy: Sendable, Equatable {
    /// How long the job may run once started (`executionTimeout`, ms on the wire).
    public var executionTimeout: Duration?
    /// How long the job may exist, queued and running, before it is deleted (`ttl`, ms).
    public var ttl: Duration?
    public var lowPriority: Bool?

    public init(executionTimeout: Duration? = nil, ttl: Duration? = nil, lowPriority: Bool? = nil) {
        self.executionTimeout = executionTimeout
        self.ttl = ttl
        self.lowPriority = lowPriority
    }

    init(json: JSONValue) throws(EndpointAPIError) {
        guard case .object(let fields) = json else { throw .invalidRequest("\"policy\" must be an object") }
        executionTimeout = try Self.milliseconds(fields["executionTimeout"], "policy.executionTimeout")
        ttl = try Self.milliseconds(fields["ttl"], "policy.ttl")
        if let value = fields["lowPriority"], value != .null {
            guard let flag = value.boolValue else { throw .invalidRequest("policy.lowPriority must be true or false") }
            lowPriority = flag
        }
    }

    var json: JSONValue? {
        var fields: [String: JSONValue] = [:]
        if let executionTimeout { fields["executionTimeout"] = .integer(executionTimeout.wholeMilliseconds) }
        if let ttl { fields["ttl"] = .integer(ttl.wholeMilliseconds) }
        if let lowPriority { fields["lowPriority"] = .bool(lowPriority) }
        return fields.isEmpty ? nil : .object(fields)
    }

    private static func milliseconds(_ value: JSONValue?, _ name: String) throws(EndpointAPIError) -> Duration? {
        guard let value, value != .null else { return nil }
        let week = EndpointLimits.maxPolicyMilliseconds
        guard let ms = value.intValue, ms > 0, ms <= week else {
            throw .invalidRequest("\(name) must be a whole number of milliseconds from 1 to \(week)")
        }
        return .milliseconds(ms)
    }
}

extension Duration {
    /// Whole milliseconds, rounded down and never negative (the unit of every wire field).
    package var wholeMilliseconds: Int64 {
        let attoseconds = self.attoseconds
        // Within ±9.2 s, as most job timings are, the division fits in 64 bits; dividing the
        // 128-bit count (as `components` does) is a library call many times slower, and every
        // status report makes two of these.
        if let small = Int64(exactly: attoseconds) { return max(0, small / 1_000_000_000_000_000) }
        return max(0, Int64(clamping: attoseconds / 1_000_000_000_000_000))
    }
}

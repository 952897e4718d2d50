import WorkerJSON

/// What a job-take answer means to the loop (docs/protocol.md, section 1.4).
package enum JobTakeOutcome: Sendable {
    /// Job objects, not yet validated (a batch is an array, a single job an object).
    case jobs([JSONValue])
    /// 204, 400 (FlashBoot) or an empty 200: ask again at once, the platform long-polls.
    case noJob
    /// 429: wait before asking again.
    case tooManyRequests
    /// 5xx, another error status, an unreadable body or a network failure: back off.
    case failed(String)

    /// Interprets an HTTP answer to job-take. Pure, so every case is tested without sockets.
    static func interpret(status: Int, body: [UInt8]) -> JobTakeOutcome {
        switch status {
        case 204, 400: return .noJob
        case 429: return .tooManyRequests
        case 200:
            guard body.contains(where: { !isWhitespace($0) }) else { return .noJob }
            do {
                switch try JSONValue.parse(body) {
                case .array(let items): return items.isEmpty ? .noJob : .jobs(items)
                case .object(let object): return .jobs([.object(object)])
                case let other: return .failed("job-take answered a JSON \(other.typeName), not a job object or a list of jobs")
                }
            } catch {
                return .failed("job-take answered a body that is \(error): \(preview(body))")
            }
        default:
            return .failed("job-take answered HTTP \(status): \(preview(body))")
        }
    }

    private static func isWhitespace(_ byte: UInt8) -> Bool {
        byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09
    }

    static func preview(_ body: [UInt8]) -> String {
        let text = String(decoding: body.prefix(200), as: UTF8.self)
        return body.count > 200 ? text + "…" : text
    }
}

/// What a job-stop answer means (docs/protocol.md, section 1.10).
package enum StopPollOutcome: Sendable, Equatable {
    case stop([String])
    /// 204 or an empty list: wait a little, then ask again.
    case nothing
    case tooManyRequests
    case failed(String)

    static func interpret(status: Int, body: [UInt8]) -> StopPollOutcome {
        switch status {
        case 204: return .nothing
        case 429: return .tooManyRequests
        case 200:
            guard let parsed = try? JSONValue.parse(body) else {
                return .failed("job-stop answered a body that is not JSON: \(JobTakeOutcome.preview(body))")
            }
            guard let list = parsed["jobsToStop"]?.arrayValue else {
                return .failed("job-stop answered JSON without a 'jobsToStop' list")
            }
            let ids = list.compactMap(\.stringValue)
            return ids.isEmpty ? .nothing : .stop(ids)
        default:
            return .failed("job-stop answered HTTP \(status): \(JobTakeOutcome.preview(body))")
        }
    }
}

/// The result of posting to job-done or job-stream.
package enum DeliveryOutcome: Sendable, Equatable {
    case delivered
    /// A 4xx other than 408 and 429: the platform refused the body; sending it again cannot help.
    case rejected(String)
    /// A 5xx, 408 or a network error: worth another attempt.
    case failed(String)
    /// A 429: worth another attempt, after `retryAfter` when the platform said how long.
    case throttled(String, retryAfter: Duration?)

    static func interpret(status: Int, body: [UInt8], retryAfter: String? = nil) -> DeliveryOutcome {
        switch status {
        case 200..<300: return .delivered
        case 429: return .throttled("HTTP 429: \(JobTakeOutcome.preview(body))", retryAfter: retryAfter.flatMap(Self.seconds))
        case 408: return .failed("HTTP 408: \(JobTakeOutcome.preview(body))")
        case 400..<500: return .rejected("HTTP \(status): \(JobTakeOutcome.preview(body))")
        default: return .failed("HTTP \(status): \(JobTakeOutcome.preview(body))")
        }
    }

    /// `Retry-After` in seconds (the HTTP-date form is not used by the platform, and is ignored).
    private static func seconds(_ value: String) -> Duration? {
        guard let seconds = Int(value.filter { $0 != " " && $0 != "\t" }), seconds >= 0 else { return nil }
        return .seconds(min(seconds, 3600))
    }

    /// The reason of an attempt that did not deliver.
    package var reason: String? {
        switch self {
        case .delivered: return nil
        case .rejected(let reason), .failed(let reason), .throttled(let reason, _): return reason
        }
    }
}

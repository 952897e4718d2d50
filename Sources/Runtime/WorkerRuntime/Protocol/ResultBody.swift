import WorkerJSON

/// Builds job-done and job-stream bodies from what a handler produced (docs/protocol.md, sections 1.5–1.8).
/// Pure functions: each rule of the wire format is tested directly.
package enum ResultBody {
    /// The platform's limit for a job result (/run); larger bodies are refused with a 400.
    static let maxResultBytes = 10 * 1024 * 1024
    /// The platform's limit for one streamed chunk.
    static let maxChunkBytes = 1024 * 1024

    /// A non-streaming handler's return value. Pops `error` and `refresh_worker` from an object,
    /// drops an empty `output`; a non-string `error` is sent as JSON text, since the platform
    /// shows a job with an object `error` as COMPLETED (runpod-python#299).
    static func forReturnedValue(_ value: JSONValue, refreshWorker: Bool) -> JSONValue {
        var body: [String: JSONValue] = [:]
        switch value {
        case .object(let original) where original.value(forKey: "error") == nil && original.value(forKey: "refresh_worker") == nil:
            // Nothing to pop: the output is the value itself, not a copy of it.
            if !original.isEmpty { body["output"] = value }
        case .object(var object):
            let error = object.removeValue(forKey: "error")
            let refresh = object.removeValue(forKey: "refresh_worker")
            if !object.isEmpty { body["output"] = .object(object) }
            if let error, error.isTruthy { body["error"] = .string(errorText(error)) }
            if refresh?.isTruthy == true { body["stopPod"] = true }
        default:
            body["output"] = value
        }
        if refreshWorker { body["stopPod"] = true }
        return .object(body)
    }

    /// The JSON-string error object runpod-python posts for a thrown error.
    static func forThrownError(
        _ error: any Error, workerID: String?, hostname: String, refreshWorker: Bool
    ) -> JSONValue {
        let details: JSONValue = [
            "error_type": .string(String(reflecting: type(of: error))),
            "error_message": .string(String(describing: error)),
            "error_traceback": .string(String(reflecting: error)),
            "hostname": .string(hostname),
            "worker_id": .string(workerID ?? "unknown"),
            "runpod_version": .string(WorkerRuntimeVersion.protocolVersion),
        ]
        let text = (try? details.jsonString()) ?? String(describing: error)
        return withStopPod(["error": .string(text)], refreshWorker)
    }

    /// A streamed chunk.
    static func forChunk(_ chunk: JSONValue) -> JSONValue { ["output": chunk] }

    /// The final post of a stream: the aggregate (or `[]`), or the error that ended it.
    static func forStreamEnd(aggregate: [JSONValue]?, refreshWorker: Bool) -> JSONValue {
        withStopPod(["output": .array(aggregate ?? [])], refreshWorker)
    }

    static func forStreamError(_ error: JSONValue, refreshWorker: Bool) -> JSONValue {
        withStopPod(["error": .string(errorText(error))], refreshWorker)
    }

    static func forStreamThrown(_ error: any Error, refreshWorker: Bool) -> JSONValue {
        let text = "handler: \(error) \ntraceback: \(String(reflecting: error))"
        return withStopPod(["error": .string(text)], refreshWorker)
    }

    static func forProgress(_ value: JSONValue) -> JSONValue {
        ["status": "IN_PROGRESS", "output": value]
    }

    /// A result that cannot be delivered as it is becomes an error that says why,
    /// instead of a post that fails (or a job that silently completes with nothing).
    /// The body to post, and whether it reports an error.
    static func encodeForDelivery(
        _ body: JSONValue, limit: Int = maxResultBytes, refreshWorker: Bool
    ) -> (payload: ResultPayload, isError: Bool) {
        let payload: ResultPayload
        do {
            payload = try ResultPayload(body)
        } catch {
            return (errorPayload("the job's output could not be encoded: \(error)", refreshWorker), true)
        }
        guard payload.byteCount <= limit else {
            let message =
                "the job's result is \(payload.byteCount) bytes, over the platform's limit of \(limit) bytes; "
                + "return a smaller output, or upload it and return its URL"
            return (errorPayload(message, refreshWorker), true)
        }
        return (payload, body["error"] != nil)
    }

    private static func errorPayload(_ message: String, _ refreshWorker: Bool) -> ResultPayload {
        // A string message always encodes.
        try! ResultPayload(withStopPod(["error": .string(message)], refreshWorker))
    }

    package static func errorText(_ error: JSONValue) -> String {
        if case .string(let text) = error { return text }
        return (try? error.jsonString()) ?? "\(error)"
    }

    private static func withStopPod(_ body: JSONValue, _ refreshWorker: Bool) -> JSONValue {
        guard refreshWorker, case .object(var object) = body else { return body }
        object["stopPod"] = true
        return .object(object)
    }
}

import WorkerJSON

/// Errors in OpenAI's schema: `{"error": {"message", "type", "code"}}`, plus `status`, the HTTP
/// status, so the local server answers OpenAI SDKs with the status the upstream gave.
package enum OpenAIError {
    package static func body(message: String, type: String, status: Int) -> JSONValue {
        [
            "error": [
                "message": .string(message), "type": .string(type), "code": .integer(Int64(status)),
                "status": .integer(Int64(status)),
            ]
        ]
    }

    /// A request refused before it ran, in OpenAI's shape: one that came back to a gateway (508)
    /// says so in its type.
    package static func refusal(message: String, status: Int) -> JSONValue {
        body(message: message, type: status == 508 ? "loop_detected" : "invalid_request_error", status: status)
    }

    /// An upstream's own error answer, kept as it is, with the status added when it has none.
    package static func fromUpstream(status: Int, body: [UInt8]) -> JSONValue {
        if case .object(var error)? = (try? JSONValue.parse(body))?["error"] {
            if error["code"] == nil || error["code"] == .null { error["code"] = .integer(Int64(status)) }
            error["status"] = .integer(Int64(status))
            if error["message"] == nil { error["message"] = .string("upstream answered HTTP \(status)") }
            return ["error": .object(error)]
        }
        let text = String(decoding: body.prefix(500), as: UTF8.self)
        return Self.body(message: "upstream answered HTTP \(status): \(text)", type: "upstream_error", status: status)
    }

    /// The HTTP status to answer with for an error (a job's `error` text or object).
    package static func status(of error: JSONValue?) -> Int {
        var value = error
        if let text = value?.stringValue { value = try? JSONValue.parse(text) }
        let object = value?["error"] ?? value
        for key in ["status", "code"] {
            if let code = object?[key]?.intValue, (400...599).contains(code) { return code }
        }
        return 500
    }

    /// An error (a job's `error` text or object) as an OpenAI error body.
    package static func normalized(_ error: JSONValue?) -> JSONValue {
        var value = error
        if let text = value?.stringValue, let parsed = try? JSONValue.parse(text) { value = parsed }
        if case .object(let object)? = value?["error"] { return ["error": .object(object)] }
        if case .object(let object)? = value, object["message"] != nil { return ["error": .object(object)] }
        let message = value.flatMap { $0.stringValue ?? (try? $0.jsonString()) } ?? "the job failed"
        return body(message: message, type: "worker_error", status: 500)
    }
}

import EndpointAPI
import WorkerJSON

/// A job's end as a `tools/call` result: the output as `structuredContent` and the same JSON as a
/// text block; a failure as `isError` with a text that says what went wrong.
enum MCPToolResult {
    static func success(_ output: JSONValue, modern: Bool) -> JSONValue {
        // structuredContent is an object; other outputs are wrapped so clients can still read them.
        // A text output is the text block as it is (not as a quoted JSON string): what an agent reads.
        let structured: JSONValue = if case .object = output { output } else { ["result": output] }
        let text = output.stringValue ?? (try? output.jsonString()) ?? "null"
        var result: [String: JSONValue] = [
            "content": [["type": "text", "text": .string(text)]],
            "structuredContent": structured, "isError": false,
        ]
        if modern { result["resultType"] = "complete" }
        return .object(result)
    }

    /// The whole JSON-RPC answer to call `id` for a successful `output`: the bytes
    /// `["jsonrpc", "id", "result": success(output)]` serializes to, written without building the
    /// envelope's objects (hashing their keys and sorting them cost a `tools/call` a tenth of
    /// its instructions) and with the output serialized once for both of its places.
    static func encodedSuccess(_ output: JSONValue, id: JSONValue, modern: Bool) throws(JSONError) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(256)
        out.append(static: #"{"id":"#)
        try id.serialize(into: &out)
        out.append(static: #","jsonrpc":"2.0","result":{"content":[{"text":"#)
        var structured: [UInt8] = []
        if case .object = output {
            try output.serialize(into: &structured)
            JSONValue.serialize(string: String(decoding: structured, as: UTF8.self), into: &out)
        } else {
            if let text = output.stringValue {
                JSONValue.serialize(string: text, into: &out)
            } else {
                JSONValue.serialize(string: try output.jsonString(), into: &out)
            }
            structured.append(static: #"{"result":"#)
            try output.serialize(into: &structured)
            structured.append(UInt8(ascii: "}"))
        }
        out.append(static: #","type":"text"}],"isError":false,"#)
        if modern { out.append(static: #""resultType":"complete","#) }
        out.append(static: #""structuredContent":"#)
        out.append(contentsOf: structured)
        out.append(static: "}}")
        return out
    }

    static func failure(_ text: String, modern: Bool) -> JSONValue {
        var result: [String: JSONValue] = ["content": [["type": "text", "text": .string(text)]], "isError": true]
        if modern { result["resultType"] = "complete" }
        return .object(result)
    }

    /// The final report of the job a call ran; `passedOn`: its output is already a `tools/call`
    /// result (a tool that forwards calls, as the gateway's do).
    static func from(_ report: JobStatusReport, tool: String, modern: Bool, passedOn: Bool = false) -> JSONValue {
        switch report.status {
        case .completed:
            if passedOn, case .object(var result)? = report.output, case .array? = result["content"] {
                if modern { result["resultType"] = "complete" }
                return .object(result)
            }
            return success(report.output ?? .null, modern: modern)
        case .timedOut:
            return failure("the \(tool) tool did not finish within its execution timeout", modern: modern)
        case .cancelled:
            return failure("the \(tool) call was cancelled", modern: modern)
        default:
            return failure(errorText(report.error) ?? "the \(tool) tool failed", modern: modern)
        }
    }

    /// The handler's message from the runtime's error report (a JSON object with
    /// `error_message`), or the text as it is.
    static func errorText(_ error: String?) -> String? {
        guard let error else { return nil }
        if let parsed = try? JSONValue.parse(error), let message = parsed["error_message"]?.stringValue { return message }
        return error
    }
}

import Hummingbird
import Logging
import NIOCore
import Synchronization
import WorkerJSON

/// An OpenAI-compatible upstream and a webhook receiver on a loopback port. The request's `model`
/// picks the behaviour: "ok", "fail" (401), "hang", "drop" (connection cut mid-stream),
/// "garbage" (200 with a body that is not JSON), "nodone" (a stream without `[DONE]`).
package final class StubUpstream: Sendable {
    package struct Hook: Sendable {
        package let body: JSONValue?
        package let at: ContinuousClock.Instant
    }

    package let hooks = Mutex<[Hook]>([])
    package let requests = Mutex<[(path: String, method: String, authorization: String?, body: JSONValue?)]>([])
    /// Webhook answers to give before answering 200.
    package let hookFailures = Atomic<Int>(0)
    let streamEvents: Int
    let eventGap: Duration
    /// A pause after the first event, so it is seen arriving alone.
    let firstEventGap: Duration

    package init(streamEvents: Int = 5, eventGap: Duration = .milliseconds(1), firstEventGap: Duration = .zero) {
        self.streamEvents = streamEvents
        self.eventGap = eventGap
        self.firstEventGap = firstEventGap
    }

    package static func chatCompletion(_ text: String) -> JSONValue {
        [
            "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "stub",
            "choices": [["index": 0, "message": ["role": "assistant", "content": .string(text)], "finish_reason": "stop"]],
            "usage": ["prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2],
        ]
    }

    package static func chunk(_ index: Int) -> String {
        let delta: JSONValue = [
            "id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "stub",
            "choices": [["index": 0, "delta": ["content": .string("t\(index) ")], "finish_reason": nil]],
        ]
        return "data: \((try? delta.jsonString()) ?? "{}")\n\n"
    }

    package func run<T: Sendable>(_ body: @Sendable (_ base: String) async throws -> T) async throws -> T {
        let router = Router()
        router.post("/hook") { request, _ in
            var request = request
            let buffer = try await request.collectBody(upTo: 1 << 20)
            self.hooks.withLock { $0.append(Hook(body: try? JSONValue.parse(buffer.readableBytesView), at: .now)) }
            if self.hookFailures.load(ordering: .relaxed) > 0 {
                self.hookFailures.subtract(1, ordering: .relaxed)
                return Response(status: .internalServerError)
            }
            return Response(status: .ok)
        }
        router.get("/v1/models") { request, _ in
            self.record(request, body: nil)
            return Self.json(["object": "list", "data": [["id": "stub-model", "object": "model"]]])
        }
        router.post("/v1/embeddings") { request, _ in
            var request = request
            let body = try? JSONValue.parse(try await request.collectBody(upTo: 1 << 20).readableBytesView)
            self.record(request, body: body)
            let inputs = body?["input"]?.arrayValue ?? [body?["input"] ?? ""]
            if inputs.contains("fail") { return Self.json(["error": ["message": "bad input"]], status: .badRequest) }
            // A deterministic 3-dimensional embedding per input: its length, and two fixed components.
            let data = inputs.enumerated().map { index, text -> JSONValue in
                let length = Double(text.stringValue?.count ?? 0)
                return ["object": "embedding", "index": .integer(Int64(index)), "embedding": [.number(length), 0.5, -0.5]]
            }
            return Self.json(["object": "list", "data": .array(data)])
        }
        router.post("/v1/chat/completions") { request, _ in
            var request = request
            let body = try? JSONValue.parse(try await request.collectBody(upTo: 1 << 20).readableBytesView)
            self.record(request, body: body)
            return try await self.chat(body)
        }
        return try await runOnLoopback(router, body)
    }

    private func record(_ request: Request, body: JSONValue?) {
        requests.withLock {
            $0.append((request.uri.path, request.method.rawValue, request.headers[.authorization], body))
        }
    }

    private func chat(_ body: JSONValue?) async throws -> Response {
        let model = body?["model"]?.stringValue ?? "ok"
        let stream = body?["stream"] == true
        switch model {
        case "fail":
            return Self.json(
                ["error": ["message": "Incorrect API key provided", "type": "invalid_request_error", "code": "invalid_api_key"]],
                status: .unauthorized)
        case "hang":
            try await Task.sleep(for: .seconds(30))
            return Self.json(Self.chatCompletion("late"))
        case "garbage":
            return Response(status: .ok, body: .init(byteBuffer: ByteBuffer(string: "<html>not json</html>")))
        default:
            break
        }
        guard stream else { return Self.json(Self.chatCompletion("hello")) }
        let events = streamEvents
        let gap = eventGap
        let firstGap = firstEventGap
        return Response(
            status: .ok, headers: [.contentType: "text/event-stream"],
            body: .init { writer in
                for index in 0..<events {
                    try await writer.write(ByteBuffer(string: Self.chunk(index)))
                    if model == "drop", index == 1 { throw CancellationError() }
                    if model == "stall", index == 1 { try await Task.sleep(for: .seconds(30)) }
                    try await Task.sleep(for: index == 0 ? max(gap, firstGap) : gap)
                }
                if model != "nodone" { try await writer.write(ByteBuffer(string: "data: [DONE]\n\n")) }
                try await writer.finish(nil)
            })
    }

    static func json(_ value: JSONValue, status: HTTPResponse.Status = .ok) -> Response {
        Response(
            status: status, headers: [.contentType: "application/json"],
            body: .init(byteBuffer: ByteBuffer(bytes: (try? value.serialized()) ?? [])))
    }
}

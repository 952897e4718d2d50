import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Synchronization
import Testing
import TestSupport
import WorkerJSON
import WorkerRuntimeTesting

@testable import WorkerEndpointServer
@testable import WorkerRuntime

@Suite("The endpoint server's OpenAI routes and webhooks", .defaultPass)
struct OpenAIRoutesTests {
    @Test("the local server's /openai/v1 routes answer OpenAI requests, streamed or not, with upstream statuses")
    func localRoutes() async throws {
        let stub = StubUpstream(streamEvents: 3)
        try await stub.run { base in
            try await withServer(environment: ["OPENAI_BASE_URL": base]) { client, _ in
                let (status, body, _) = try await client.call(
                    .post, "/openai/v1/chat/completions", json: ["model": "ok", "messages": [["role": "user", "content": "hi"]]])
                #expect(status == 200)
                #expect(body == StubUpstream.chatCompletion("hello"))
                let models = try await client.call(.get, "/v2/ep/openai/v1/models")
                #expect(models.body?["data"]?[0]?["id"] == "stub-model")
                let embeddings = try await client.call(.post, "/openai/v1/embeddings", json: ["model": "e", "input": "x"])
                #expect(embeddings.body?["data"]?[0]?["embedding"] == [1.0, 0.5, -0.5])
                let failed = try await client.call(.post, "/openai/v1/chat/completions", json: ["model": "fail"])
                #expect(failed.status == 401)
                #expect(failed.body?["error"]?["message"]?.stringValue?.contains("Incorrect API key") == true)
                let sse = try await client.execute(
                    uri: "/openai/v1/chat/completions", method: .post, headers: [.contentType: "application/json"],
                    body: ByteBuffer(string: #"{"model":"ok","stream":true}"#)
                ) { response in (response.status.code, response.headers[.contentType], String(buffer: response.body)) }
                #expect(sse.0 == 200)
                #expect(sse.1 == "text/event-stream")
                #expect(sse.2 == (0..<3).map(StubUpstream.chunk).joined() + "data: [DONE]\n\n")
                let streamFail = try await client.call(.post, "/openai/v1/chat/completions", json: ["model": "fail", "stream": true])
                #expect(streamFail.status == 401)
                let metrics = try await client.execute(uri: "/metrics", method: .get) { String(buffer: $0.body) }
                #expect(metrics.contains(#"worker_passthrough_requests_total{route="/v1/chat/completions",status="200"} 2"#))
                #expect(metrics.contains(#"worker_passthrough_requests_total{route="/v1/chat/completions",status="401"} 2"#))
            }
        }
    }

    @Test("webhooks: the cloud envelope on success and failure, retried after a non-200 answer")
    func webhooks() async throws {
        let stub = StubUpstream()
        try await stub.run { base in
            try await withServer(limits: { $0.webhookRetryDelays = [.milliseconds(50), .milliseconds(50)] }) { client, _ in
                stub.hookFailures.store(1, ordering: .relaxed)
                let ok = try await client.call(.post, "/runsync", json: ["input": ["a": 1], "webhook": .string("\(base)/hook")])
                let failed = try await client.call(.post, "/runsync", json: ["input": ["fail": "boom"], "webhook": .string("\(base)/hook")])
                try await waitUntil { stub.hooks.withLock { $0.count } == 3 }
                let hooks = stub.hooks.withLock { $0 }
                // The first delivery got a 500 and was retried.
                let first = hooks.filter { $0.body?["id"] == hooks[0].body?["id"] }
                #expect(first.count == 2)
                #expect(first[0].body == first[1].body)
                #expect(first[1].at - first[0].at >= .milliseconds(45))
                let success = try #require(hooks.first { $0.body?["status"] == "COMPLETED" }?.body)
                #expect(success["id"] == ok.body?["id"])
                #expect(success["input"] == ["a": 1])
                #expect(success["output"] == ["a": 1])
                #expect(success["webhook"] == .string("\(base)/hook"))
                #expect(success["delayTime"] != nil && success["executionTime"] != nil)
                let failure = try #require(hooks.first { $0.body?["status"] == "FAILED" }?.body)
                #expect(failure["id"] == failed.body?["id"])
                #expect(failure["error"]?.stringValue?.contains("boom") == true)
            }
        }
    }

    @Test("a handler that streams without ever suspending still has every chunk relayed (the relay listens from the start)")
    func immediateStream() async throws {
        let handler = StreamingClosureHandler { _, _, stream in
            for index in 0..<3 { try await stream.yield(.string("data: \(index)\n\n")) }
        }
        try await withServer(handler) { client, _ in
            let text = try await client.execute(
                uri: "/openai/v1/chat/completions", method: .post, headers: [.contentType: "application/json"],
                body: ByteBuffer(string: #"{"model":"any","stream":true}"#)
            ) { String(buffer: $0.body) }
            #expect(text == "data: 0\n\ndata: 1\n\ndata: 2\n\ndata: [DONE]\n\n")
        }
    }
}

import CurlHTTP
import GatewayCore
import HTTPTypes
import Hummingbird
import LoopbackServer
import NIOCore
import Synchronization
import Testing
import TestSupport
import WorkerJSON
import WorkerRuntime
import WorkerRuntimeTesting

@testable import Gateway

/// OpenAI requests through the gateway, against OpenAI-compatible upstreams served in process.
@Suite("The gateway's OpenAI routing", .defaultPass)
struct GatewayOpenAITests {
    static let http = CurlHTTPClient(name: "gateway-openai-tests")

    /// An upstream answering chat completions as `name` (JSON, or SSE for `"stream": true`), or
    /// always `failing` with that status.
    static func upstream(_ name: String, failing: Int? = nil, calls: Calls) -> Router<BasicRequestContext> {
        let router = Router()
        router.post("v1/chat/completions") { request, _ in
            var request = request
            let body = try JSONValue.parse(try await request.collectBody(upTo: 1 << 20).readableBytesView)
            calls.count.add(1, ordering: .relaxed)
            if let failing {
                return Response(status: .init(code: failing), headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: #"{"error":{"message":"down"}}"#)))
            }
            if body["stream"] == true {
                let text = "data: {\"id\":\"\(name)\",\"choices\":[{\"delta\":{\"content\":\"hi\"}}]}\n\ndata: [DONE]\n\n"
                return Response(status: .ok, headers: [.contentType: "text/event-stream"], body: .init(byteBuffer: ByteBuffer(string: text)))
            }
            let answer: JSONValue = ["id": .string(name), "object": "chat.completion", "model": body["model"] ?? .null, "choices": [["message": ["role": "assistant", "content": "hi"]]]]
            return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: try answer.serialized())))
        }
        return router
    }

    func runtime(_ upstreams: [(name: String, url: String, models: [String])]) throws -> WorkerRuntime {
        let configuration = try GatewayConfiguration.parse(
            ["upstreams": .array(upstreams.map { ["name": .string($0.name), "openai_url": .string($0.url + "/v1"), "models": .array($0.models.map { .string($0) })] })],
            environment: [:])
        let pool = UpstreamPool(configuration: configuration)
        let handler = GatewayHandler(
            router: TierRouter(configuration: configuration), pool: pool, clients: configuration.upstreams.map { _ in nil },
            openAI: GatewayOpenAI(pool: pool, client: Self.http))
        return WorkerRuntime(handler: handler, options: WorkerOptions(name: "gateway"))
    }

    static func chat(_ model: String, stream: Bool = false) -> JSONValue {
        ["openai_route": "/v1/chat/completions", "openai_input": ["model": .string(model), "stream": .bool(stream), "messages": [["role": "user", "content": "hello"]]]]
    }

    @Test("By model; a 503 from one upstream goes to another serving the model; streams pass through; unknown models are named")
    func routing() async throws {
        let badCalls = Calls()
        let goodCalls = Calls()
        let otherCalls = Calls()
        try await runOnLoopback(Self.upstream("bad", failing: 503, calls: badCalls)) { bad in
            try await runOnLoopback(Self.upstream("good", calls: goodCalls)) { good in
                try await runOnLoopback(Self.upstream("other", calls: otherCalls)) { other in
                    let runtime = try runtime([("bad", bad, ["m"]), ("good", good, ["m"]), ("other", other, ["x"])])
                    for _ in 0..<6 {
                        let result = try await runtime.test(Self.chat("m"))
                        let text = (try? result.output?.jsonString()) ?? "\(result)"
                        #expect(text.contains("\"id\":\"good\""), "\(text)")
                    }
                    let streamed = try await runtime.test(Self.chat("m", stream: true))
                    let text = (try? streamed.output?.jsonString()) ?? "\(streamed)"
                    #expect(text.contains("good") && text.contains("[DONE]"), "\(text)")
                    #expect(otherCalls.value == 0)
                    let unknown = "\(try await runtime.test(Self.chat("nope")))"
                    #expect(unknown.contains("the model nope is not served here") && unknown.contains("404"), "\(unknown)")
                    let noModel = "\(try await runtime.test(["openai_route": "/v1/chat/completions", "openai_input": ["messages": []]]))"
                    #expect(noModel.contains("names no model"), "\(noModel)")
                    let models = (try? (try await runtime.test(["openai_route": "/v1/models"])).output?.jsonString()) ?? ""
                    #expect(models.contains("\"id\":\"m\"") && models.contains("\"id\":\"x\""), "\(models)")
                }
            }
        }
    }

    @Test("The only upstream serving a model answers 503: the client gets that error, not a hang")
    func lastUpstream() async throws {
        let calls = Calls()
        try await runOnLoopback(Self.upstream("bad", failing: 503, calls: calls)) { bad in
            let runtime = try runtime([("bad", bad, ["m"])])
            let text = "\(try await runtime.test(Self.chat("m")))"
            #expect(text.contains("down") || text.contains("503"), "\(text)")
            #expect(calls.value == 1)
        }
    }
}

/// Requests an upstream served.
final class Calls: Sendable {
    let count = Atomic<Int>(0)
    var value: Int { count.load(ordering: .relaxed) }
}

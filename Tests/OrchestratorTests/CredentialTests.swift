import CurlHTTP
import EndpointClient
@testable import Orchestrator
import Testing
import TestSupport
import WorkerJSON

@Suite("Credentials: RunPod's key only to RunPod over HTTPS; no URL's password in logs or errors", .defaultPass)
struct CredentialTests {
    @Test("RunPod's own hosts over HTTPS receive RunPod's key; nothing that only looks like one does")
    func runPodHosts() {
        for url in [
            "https://api.runpod.ai/v2/abc", "https://API.RUNPOD.AI/v2/abc/openai/v1", "https://abc123.api.runpod.ai",
            "https://api.runpod.io/graphql", "https://api.runpod.ai./v2/x", "https://user:pw@api.runpod.ai/v2/x", "https://api.runpod.ai:443/v2/x",
        ] {
            #expect(URLCredentials.mayReceiveRunPodKey(url), "\(url)")
        }
        for url in [
            "http://api.runpod.ai/v2/abc", "https://api.runpod.ai.evil.com/v2/x", "https://evilrunpod.ai/v2/x", "https://api.runpod.ai@evil.com/v2/x",
            "https://evil.com/api.runpod.ai", "https://evil.com?x=.runpod.ai", "https://evil.com#.runpod.ai", "https://evil.com\\@api.runpod.ai/",
            "https://abc-8000.proxy.runpod.net/v2/x", "https://127.0.0.1/v2/x", "https://[::1]/v2/x", "ftp://api.runpod.ai/x", "api.runpod.ai/v2/x", "",
        ] {
            #expect(!URLCredentials.mayReceiveRunPodKey(url), "\(url)")
        }
    }

    @Test("URLs are shown without their user information or query values")
    func redaction() throws {
        #expect(URLCredentials.redacted("https://user:s3cret@host:8080/v1/x") == "https://***@host:8080/v1/x")
        #expect(URLCredentials.redacted("https://token@host") == "https://***@host")
        #expect(URLCredentials.redacted("http://host/v1?api_key=s3cret&gpu=a") == "http://host/v1?api_key=***&gpu=***")
        #expect(URLCredentials.redacted("http://host:1/v2/x") == "http://host:1/v2/x")
        #expect(URLCredentials.redacted("abc123") == "abc123")
        let endpoint = try Endpoint("https://u:s3cret@host/v2/x", apiKey: nil)
        #expect(endpoint.description == "https://***@host/v2/x")
    }

    @Test("With only RUNPOD_API_KEY set, it goes to RunPod endpoints and a RunPod LLM over HTTPS, and to nothing else")
    func platformKey() throws {
        let elsewhere = try OrchestratorConfiguration.fromEnvironment([
            "RUNPOD_API_KEY": "rp-key", "CONTEXT7_ENDPOINT": "http://context7.internal:8000/v2/ctx",
            "MEMORY_ENDPOINT": "https://memory.example.com/v2/mem", "LLM_BASE_URL": "https://api.openai.com/v1", "LLM_MODEL": "gpt-4o-mini",
        ])
        #expect(elsewhere.context7?.apiKey == nil && elsewhere.memory?.apiKey == nil && elsewhere.llm?.apiKey == nil)
        #expect(elsewhere.withheldKeys.count == 3, "\(elsewhere.withheldKeys)")
        #expect(elsewhere.withheldKeys.allSatisfy { $0.contains("RUNPOD_API_KEY is not sent") && !$0.contains("rp-key") })

        let plain = try OrchestratorConfiguration.fromEnvironment([
            "RUNPOD_API_KEY": "rp-key", "MEMORY_ENDPOINT": "http://api.runpod.ai/v2/mem",
            "LLM_BASE_URL": "http://api.runpod.ai/v2/vllm/openai/v1", "LLM_MODEL": "qwen",
        ])
        #expect(plain.memory?.apiKey == nil && plain.llm?.apiKey == nil, "never over plain HTTP, not even to RunPod's host")

        let runpod = try OrchestratorConfiguration.fromEnvironment([
            "RUNPOD_API_KEY": "rp-key", "CONTEXT7_ENDPOINT": "ctx123", "MEMORY_ENDPOINT": "https://api.runpod.ai/v2/mem",
            "LLM_BASE_URL": "https://api.runpod.ai/v2/vllm/openai/v1", "LLM_MODEL": "qwen",
        ])
        #expect(runpod.context7?.baseURL == "https://api.runpod.ai/v2/ctx123")
        #expect(runpod.context7?.apiKey == "rp-key" && runpod.memory?.apiKey == "rp-key" && runpod.llm?.apiKey == "rp-key")
        #expect(runpod.withheldKeys.isEmpty)
    }

    @Test("A key set for a service goes to it, wherever it is; the endpoints' key is not the LLM's")
    func explicitKeys() throws {
        let configuration = try OrchestratorConfiguration.fromEnvironment([
            "RUNPOD_API_KEY": "rp-key", "ENDPOINT_API_KEY": "ep-key", "LLM_API_KEY": "llm-key",
            "CONTEXT7_ENDPOINT": "http://context7.internal:8000/v2/ctx", "MEMORY_ENDPOINT": "https://memory.example.com/v2/mem",
            "LLM_BASE_URL": "http://vllm.internal:8000/v1", "LLM_MODEL": "qwen",
        ])
        #expect(configuration.context7?.apiKey == "ep-key" && configuration.memory?.apiKey == "ep-key")
        #expect(configuration.llm?.apiKey == "llm-key" && configuration.withheldKeys.isEmpty)
        let thirdPartyLLM = try OrchestratorConfiguration.fromEnvironment([
            "ENDPOINT_API_KEY": "ep-key", "LLM_BASE_URL": "https://api.openai.com/v1", "LLM_MODEL": "gpt-4o-mini",
        ])
        #expect(thirdPartyLLM.llm?.apiKey == nil)
    }

    @Test("The start-up log names every service without the credentials in their URLs; a bad URL's error hides them too")
    func startupLog() throws {
        let configuration = try OrchestratorConfiguration.fromEnvironment([
            "RUNPOD_API_KEY": "rp-key-123",
            "CONTEXT7_ENDPOINT": "https://ctxuser:ctx-pass-1@context7.example.com/v2/ctx",
            "MEMORY_ENDPOINT": "http://memuser:mem-pass-2@10.0.0.5:8000/v2/mem",
            "LLM_BASE_URL": "https://llmuser:llm-pass-3@llm.example.com/v1", "LLM_MODEL": "m",
            "DATABASE_URL": "postgresql://dbuser:db-pass-4@db.example.com:5432/leads",
        ])
        let logs = LogCollector()
        configuration.logDownstream(to: logs.logger())
        let text = logs.all.joined(separator: "\n")
        #expect(text.contains("context7.example.com") && text.contains("10.0.0.5:8000") && text.contains("llm.example.com"), "\(text)")
        #expect(text.contains("RUNPOD_API_KEY is not sent"), "\(text)")
        for secret in ["ctx-pass-1", "mem-pass-2", "llm-pass-3", "db-pass-4", "rp-key-123", "ctxuser", "memuser", "llmuser"] {
            #expect(!text.contains(secret), "\(secret) in: \(text)")
        }
        for (name, value) in [
            ("MEMORY_ENDPOINT", "ftp://memuser:mem-pass-2@host/v2/mem"), ("LLM_BASE_URL", "gopher://llmuser:llm-pass-3@host/v1"),
        ] {
            do {
                _ = try OrchestratorConfiguration.fromEnvironment([name: value, "LLM_MODEL": "m"])
                Issue.record("\(name)=\(value) must be refused")
            } catch {
                #expect("\(error)".contains(name) && !"\(error)".contains("pass"), "\(error)")
            }
        }
    }

    @Test("Errors of calls to URLs with credentials (the LLM, an endpoint) do not show them")
    func errorsHideCredentials() async throws {
        let port = RedisTestServer.unusedPort()
        let http = CurlHTTPClient(name: "credentials-test")
        defer { Task { await http.shutdown() } }
        let llm = OpenAIChatModel(
            configuration: LLMConfiguration(baseURL: "http://llmuser:llm-pass-3@127.0.0.1:\(port)/v1", model: "m", apiKey: nil), http: http,
            retries: 0, backoff: PollSchedule(initial: .milliseconds(5), factor: 2, cap: .milliseconds(20)))
        let request = ChatRequest(messages: [.init(role: "user", content: "hi")], schemaName: "test", schema: ["type": "object"])
        await #expect {
            _ = try await llm.complete(request, deadline: .now + .seconds(10))
        } throws: { error in
            "\(error)".contains("127.0.0.1:\(port)") && !"\(error)".contains("llm-pass-3") && !"\(error)".contains("llmuser")
        }
        let endpoint = EndpointClient(endpoint: try Endpoint("http://user:ep-pass-5@127.0.0.1:\(port)/v2/x", apiKey: nil), http: http)
        await #expect {
            _ = try await endpoint.output(of: ["action": "store"], within: .seconds(2))
        } throws: { error in
            "\(error)".contains("127.0.0.1:\(port)") && !"\(error)".contains("ep-pass-5")
        }
    }
}

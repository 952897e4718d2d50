@testable import Orchestrator
import EndpointClient
import Logging
import Synchronization
import WorkerJSON

/// An LLM that answers from a script (then repeats its last answer), recording every request.
final class ScriptedModel: LanguageModel {
    let name = "scripted"
    private let state: Mutex<(answers: [ChatAnswer], requests: [ChatRequest])>
    private let failure: LLMError?

    init(_ answers: [ChatAnswer], failure: LLMError? = nil) {
        state = Mutex((answers, []))
        self.failure = failure
    }

    convenience init(json texts: [String]) {
        self.init(texts.map { ChatAnswer(content: $0, refusal: nil, finishReason: "stop") })
    }

    var requests: [ChatRequest] { state.withLock { $0.requests } }

    func complete(_ request: ChatRequest, deadline: ContinuousClock.Instant) async throws -> ChatAnswer {
        if let failure { throw failure }
        return state.withLock { state in
            state.requests.append(request)
            return state.answers.count > 1 ? state.answers.removeFirst() : state.answers[0]
        }
    }
}

/// A downstream endpoint run by a closure, counting calls and keeping inputs.
final class StubEndpoint: JobEndpoint {
    let name: String
    private let inputs = Mutex<[JSONValue]>([])
    private let body: @Sendable (JSONValue, Int) async throws -> JSONValue

    init(_ name: String, _ body: @escaping @Sendable (_ input: JSONValue, _ call: Int) async throws -> JSONValue) {
        self.name = name
        self.body = body
    }

    var calls: [JSONValue] { inputs.withLock { $0 } }

    func output(of input: JSONValue, within deadline: Duration) async throws -> JSONValue {
        let number = inputs.withLock { $0.append(input); return $0.count }
        return try await body(input, number)
    }
}

struct StubFailure: Error, CustomStringConvertible {
    let description: String
}

enum Fixtures {
    static let strongLead: JSONValue = [
        "id": "L-strong", "name": "Ada Lovelace", "title": "VP of Engineering", "company": "Acme", "company_size": 450,
        "industry": "Software", "email": "ada@acme.io", "signals": ["pricing_page", "demo_request"],
    ]
    static let weakLead: JSONValue = [
        "id": "L-weak", "name": "Bob", "title": "Intern", "company_size": 5, "industry": "Agriculture", "email": "bob@gmail.com",
    ]

    static func lead(_ value: JSONValue) -> Lead { try! Lead.parse(value) }

    static func configuration(_ change: (inout OrchestratorConfiguration) -> Void = { _ in }) -> OrchestratorConfiguration {
        var configuration = OrchestratorConfiguration()
        configuration.retrySchedule.initial = .milliseconds(1)
        configuration.retrySchedule.cap = .milliseconds(5)
        configuration.lease = .seconds(5)
        change(&configuration)
        return configuration
    }

    static let logger = Logger(label: "orchestrator-test")
    static var soon: ContinuousClock.Instant { .now + .seconds(20) }

    static let context7Answer: @Sendable (JSONValue, Int) async throws -> JSONValue = { input, _ in
        ["library_id": input["library_id"] ?? .null, "content": "Serverless GPUs scale to zero.", "found": true]
    }
    static let memoryAnswer: @Sendable (JSONValue, Int) async throws -> JSONValue = { input, _ in
        ["stored": 1, "namespace": input["namespace"] ?? .null]
    }
}

@testable import Orchestrator
import Testing
import TestSupport
import WorkerJSON

@Suite("Lead data and job parsing", .defaultPass)
struct LeadTests {
    static let malformedLeads: [(JSONValue, String)] = [
        (JSONValue.string("x"), "must be an object"),
        (["name": "no id"], "id is missing"),
        (["id": ""], "1 to 256 bytes"),
        (["id": ["nested": 1]], "id must be a string or a whole number"),
        (["id": "a", "company_size": "lots"], "company_size must be a number or a range"),
        (["id": "a", "budget": -5], "budget must be a non-negative number"),
        (["id": "a", "signals": "demo"], "signals must be a list of strings"),
        (["id": "a", "signals": [1]], "signals[0] must be a string"),
        (["id": "a", "title": 7], "title must be a string"),
        (["id": "a", "unsubscribed": "yes"], "unsubscribed must be true or false"),
        (["id": .string(String(repeating: "x", count: 300))], "1 to 256 bytes"),
        (["id": "a", "notes": .string(String(repeating: "n", count: 70_000))], "at most 65536"),
    ]

    @Test("Fields are typed; numbers, ranges and aliases are read; the whole object is kept")
    func parsing() throws {
        let lead = try Lead.parse([
            "id": 42, "company_size": "201-1000", "budget": 25000, "intent_signals": ["trial_signup"], "email": "X@Example.COM",
            "custom": ["kept": true],
        ])
        #expect(lead.id == "42" && lead.companySize == 201 && lead.budget == 25000 && lead.signals == ["trial_signup"])
        #expect(lead.emailDomain == "example.com")
        #expect(lead.data["custom"]?["kept"] == true)
    }

    @Test(
        "Malformed leads are refused with the field named",
        arguments: LeadTests.malformedLeads)
    func malformed(_ value: JSONValue, _ message: String) {
        #expect {
            _ = try Lead.parse(value)
        } throws: { error in
            "\(error)".contains(message) && "\(error)".contains("input.lead_data")
        }
    }

    @Test("Requests: the three actions, batches with bad leads kept as failures, bounds named")
    func requests() throws {
        #expect(try OrchestratorRequest.parse(["action": "get_lead", "lead_id": 7]) == .getLead("7"))
        guard case .batchProcess(let leads, let concurrency) = try OrchestratorRequest.parse([
            "action": "batch_process", "leads": [["id": "a"], ["name": "no id"]], "concurrency": 3,
        ]) else {
            Issue.record("not a batch")
            return
        }
        #expect(concurrency == 3 && leads.count == 2)
        #expect((try? leads[0].get())?.id == "a")
        if case .failure(let error) = leads[1] { #expect(error.description.contains("input.leads[1].id is missing")) } else { Issue.record("must fail") }
        for (input, message) in [
            (["action": "process_lead"] as JSONValue, "input.lead_data must be an object"),
            (["action": "batch_process", "leads": []], "1 to 10000 leads"),
            (["action": "batch_process", "leads": [["id": 1]], "concurrency": 65], "concurrency must be a whole number from 1 to 64"),
            (["action": "get_lead"], "input.lead_id"),
            (["action": "fly"], "unknown action 'fly'"),
            ([1, 2], "input must be an object"),
        ] {
            do {
                _ = try OrchestratorRequest.parse(input)
                Issue.record("\(input) must be refused")
            } catch {
                #expect(error.isInputError && error.description.contains(message), "\(error)")
            }
        }
    }
}

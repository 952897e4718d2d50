@testable import Orchestrator
import Testing
import TestSupport
import WorkerJSON

@Suite("The rule scorer, enrichment rules and the growth template", .defaultPass)
struct ScoringTests {
    @Test("Fit and intent rows fire from the table; the score is points over 100, clamped; reasons are the rows")
    func strongLead() {
        let result = ScoringRules.score(Fixtures.lead(Fixtures.strongLead))
        // VP 20 + 201-1000 20 + primary industry 20 + pricing 20 + demo 30 = 110 → 1.
        #expect(result["points"] == 110 && result["score"] == 1.0)
        #expect(result["reasons"]?.arrayValue?.count == 5)
        #expect(result["bant"]?["authority"] == 20 && result["bant"]?["need"] == 70 && result["bant"]?["budget"] == 20)
        #expect(result["method"] == "rules")
    }

    @Test("Negatives: free mail and unsubscribed; nothing matched says so")
    func negatives() {
        let weak = ScoringRules.score(Fixtures.lead(Fixtures.weakLead))
        // Intern 5 + free mail -20 = -15 → 0.
        #expect(weak["points"] == -15 && weak["score"] == 0.0)
        #expect(weak["reasons"]?.arrayValue?.contains("free-mail address (-20)") == true)
        let empty = ScoringRules.score(Fixtures.lead(["id": "e"]))
        #expect(empty["score"] == 0.0 && empty["reasons"] == ["nothing in the lead matched a scoring rule"])
        let optedOut = ScoringRules.rows(for: Fixtures.lead(["id": "u", "title": "CEO", "unsubscribed": true]))
        #expect(optedOut.map(\.points) == [25, -50])
    }

    @Test(
        "Titles by seniority, matched as words",
        arguments: [
            ("Chief Technology Officer", 25), ("CTO & co-founder", 25), ("Head of Data", 20), ("Senior Director, IT", 15),
            ("Engineering Manager", 10), ("Software Engineer", 5), ("Directory clerk", 5),
        ])
    func titles(_ title: String, _ points: Int) {
        #expect(ScoringRules.rows(for: Fixtures.lead(["id": "t", "title": .string(title)])).first?.points == points)
    }

    @Test("Budget, timeline, sizes and signal spellings")
    func otherRows() {
        let rows = ScoringRules.rows(for: Fixtures.lead([
            "id": "b", "budget": 60000, "timeline": "This quarter", "company_size": 30, "industry": "Healthcare",
            "signals": ["Demo Request", "demo", "comparison-page", "unknown_signal"],
        ]))
        #expect(rows.map(\.label) == [
            "company of 11-50 employees", "secondary industry", "budget of 50,000 or more", "buying this quarter", "requested a demo",
            "visited a comparison page",
        ])
    }

    @Test("Enrichment rules and the strategy template follow the lead")
    func templates() {
        let lead = Fixtures.lead(Fixtures.strongLead)
        let enrichment = Enrichment.rules(lead)
        #expect(enrichment["website"] == "https://acme.io" && enrichment["free_mail"] == false)
        #expect(enrichment["seniority"] == "vp" && enrichment["company_size_band"] == "201-1000" && enrichment["industry_tier"] == "primary")
        let strategy = GrowthTemplate.strategy(lead, qualification: ["score": 0.9])
        #expect(strategy["priority"] == "high")
        #expect(strategy["next_steps"]?[0] == "Book the requested call within one business day")
        #expect(GrowthTemplate.strategy(lead, qualification: ["score": 0.6])["priority"] == "low")
        #expect(Enrichment.rules(Fixtures.lead(Fixtures.weakLead))["website"] == nil)
    }
}

import CurlHTTP
import WorkerJSON

/// The rule scorer: the common marketing-automation practice, in one table. Two axes, fit (who
/// they are) and intent (what they did), framed by BANT: every row counts toward budget,
/// authority, need or timeline. A lead's score is its points over 100, clamped to [0, 1]; its
/// reasons are the rows that fired, so the score explains itself. Used without an LLM, and when
/// an LLM's answers stay invalid.
enum ScoringRules {
    enum BANT: String, CaseIterable {
        case budget, authority, need, timeline
    }

    struct Row: Equatable {
        let label: String
        let points: Int
        let bant: BANT
    }

    /// Title seniority (authority), first match wins.
    static let seniority: [(words: [String], row: Row)] = [
        (["chief", "ceo", "cto", "cfo", "coo", "cio", "cmo", "cro", "founder", "owner", "president"], Row(label: "C-level title", points: 25, bant: .authority)),
        (["vp", "vice president", "head of"], Row(label: "VP title", points: 20, bant: .authority)),
        (["director"], Row(label: "director title", points: 15, bant: .authority)),
        (["manager", "lead"], Row(label: "manager title", points: 10, bant: .authority)),
    ]
    static let individualContributor = Row(label: "individual contributor title", points: 5, bant: .authority)

    /// Company size in employees (budget): the sweet spot is 201–1000.
    static let companySize: [(range: ClosedRange<Int>, row: Row)] = [
        (201...1000, Row(label: "company of 201-1000 employees", points: 20, bant: .budget)),
        (1001...5000, Row(label: "company of 1001-5000 employees", points: 15, bant: .budget)),
        (5001...Int.max, Row(label: "company of over 5000 employees", points: 10, bant: .budget)),
        (51...200, Row(label: "company of 51-200 employees", points: 10, bant: .budget)),
        (11...50, Row(label: "company of 11-50 employees", points: 5, bant: .budget)),
    ]

    /// Industries (need): primary markets +20, secondary +10; matched as words in the lead's industry.
    static let primaryIndustries = ["software", "saas", "technology", "ai", "machine learning", "fintech", "developer tools"]
    static let secondaryIndustries = ["financial services", "healthcare", "e-commerce", "ecommerce", "media", "gaming", "retail", "manufacturing"]
    static let primaryIndustry = Row(label: "primary industry", points: 20, bant: .need)
    static let secondaryIndustry = Row(label: "secondary industry", points: 10, bant: .need)

    /// A stated budget (budget), first match wins.
    static let budget: [(atLeast: Double, row: Row)] = [
        (50_000, Row(label: "budget of 50,000 or more", points: 15, bant: .budget)),
        (10_000, Row(label: "budget of 10,000 or more", points: 10, bant: .budget)),
        (1, Row(label: "some budget stated", points: 5, bant: .budget)),
    ]

    /// Buying timeline (timeline), first match wins.
    static let timeline: [(words: [String], row: Row)] = [
        (["immediate", "now", "asap", "this month", "this quarter", "30 days"], Row(label: "buying this quarter", points: 10, bant: .timeline)),
        (["next quarter", "3 months", "6 months", "this year", "90 days"], Row(label: "buying within the year", points: 5, bant: .timeline)),
    ]

    /// Intent signals (need); each counts once.
    static let signals: [String: Row] = [
        "demo_request": Row(label: "requested a demo", points: 30, bant: .need),
        "contact_sales": Row(label: "contacted sales", points: 30, bant: .need),
        "trial_signup": Row(label: "signed up for a trial", points: 25, bant: .need),
        "pricing_page": Row(label: "visited the pricing page", points: 20, bant: .need),
        "comparison_page": Row(label: "visited a comparison page", points: 15, bant: .need),
        "webinar": Row(label: "attended a webinar", points: 10, bant: .need),
        "content_download": Row(label: "downloaded content", points: 5, bant: .need),
    ]
    /// Spellings of the same signals agents and CRMs use.
    static let signalAliases = ["demo": "demo_request", "trial": "trial_signup", "pricing": "pricing_page", "comparison": "comparison_page"]

    /// Negatives: a free-mail address says little about a company; unsubscribed leads opted out.
    static let freeMail = Row(label: "free-mail address", points: -20, bant: .authority)
    static let unsubscribed = Row(label: "unsubscribed", points: -50, bant: .need)
    static let freeMailDomains: Set<String> = [
        "gmail.com", "googlemail.com", "yahoo.com", "hotmail.com", "outlook.com", "live.com", "aol.com", "icloud.com", "me.com",
        "proton.me", "protonmail.com", "gmx.com", "gmx.de", "mail.com", "yandex.com", "qq.com", "163.com",
    ]

    /// The points that make a score of 1.
    static let fullScore = 100.0

    /// The rows that fire for `lead`.
    static func rows(for lead: Lead) -> [Row] {
        var rows: [Row] = []
        if let title = lead.title?.lowercased() {
            rows.append(seniority.first { entry in entry.words.contains { containsWord(title, $0) } }?.row ?? individualContributor)
        }
        if let size = lead.companySize, let entry = companySize.first(where: { $0.range.contains(size) }) { rows.append(entry.row) }
        if let industry = lead.industry?.lowercased() {
            if primaryIndustries.contains(where: { containsWord(industry, $0) }) {
                rows.append(primaryIndustry)
            } else if secondaryIndustries.contains(where: { containsWord(industry, $0) }) {
                rows.append(secondaryIndustry)
            }
        }
        if let amount = lead.budget, let entry = budget.first(where: { amount >= $0.atLeast }) { rows.append(entry.row) }
        if let when = lead.timeline?.lowercased(), let entry = timeline.first(where: { $0.words.contains { containsWord(when, $0) } }) {
            rows.append(entry.row)
        }
        var seen = Set<String>()
        for raw in lead.signals {
            let key = raw.lowercased().trimmingSpaces().replacingSpaces()
            let name = signalAliases[key] ?? key
            if let row = signals[name], seen.insert(name).inserted { rows.append(row) }
        }
        if let domain = lead.emailDomain, freeMailDomains.contains(domain) { rows.append(freeMail) }
        if lead.unsubscribed { rows.append(unsubscribed) }
        return rows
    }

    /// The rule scorer's qualification: score, reasons and the BANT breakdown.
    static func score(_ lead: Lead) -> JSONValue {
        let fired = rows(for: lead)
        let points = fired.reduce(0) { $0 + $1.points }
        let score = min(1, max(0, Double(points) / fullScore))
        var bant: [String: JSONValue] = [:]
        for part in BANT.allCases {
            bant[part.rawValue] = .integer(Int64(fired.filter { $0.bant == part }.reduce(0) { $0 + $1.points }))
        }
        let reasons = fired.map { JSONValue.string("\($0.label) (\($0.points > 0 ? "+" : "")\($0.points))") }
        return [
            "score": .number((score * 1000).rounded() / 1000), "points": .integer(Int64(points)),
            "reasons": .array(reasons.isEmpty ? ["nothing in the lead matched a scoring rule"] : reasons),
            "bant": .object(bant), "method": "rules",
        ]
    }

    /// `word` appears in `text` bounded by non-letters ("cto" in "cto & co-founder", not in "director").
    static func containsWord(_ text: String, _ word: String) -> Bool {
        let padded = " " + String(text.map { $0.isLetter || $0.isNumber || $0 == "-" ? $0 : " " }) + " "
        return padded.contains(" " + word + " ")
    }
}

extension String {
    /// Spaces and dashes as underscores: "Demo Request" and "demo-request" read as demo_request.
    func replacingSpaces() -> String {
        String(map { $0 == " " || $0 == "-" ? "_" : $0 })
    }
}

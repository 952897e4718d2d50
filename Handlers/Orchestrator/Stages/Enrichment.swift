import WorkerJSON

/// Enrichment without an LLM: what the lead's own fields tell for certain.
enum Enrichment {
    static func facts(_ lead: Lead) -> [String: JSONValue] {
        var facts: [String: JSONValue] = [:]
        if let domain = lead.emailDomain {
            let free = ScoringRules.freeMailDomains.contains(domain)
            facts["email_domain"] = .string(domain)
            facts["free_mail"] = .bool(free)
            if !free { facts["website"] = .string("https://\(domain)") }
        }
        return facts
    }

    static func rules(_ lead: Lead) -> JSONValue {
        var fields = facts(lead)
        fields["method"] = "rules"
        fields["seniority"] = .string(seniority(lead))
        fields["company_size_band"] = .string(sizeBand(lead.companySize))
        if let industry = lead.industry?.lowercased() {
            let tier = ScoringRules.primaryIndustries.contains { ScoringRules.containsWord(industry, $0) } ? "primary"
                : ScoringRules.secondaryIndustries.contains { ScoringRules.containsWord(industry, $0) } ? "secondary" : "other"
            fields["industry_tier"] = .string(tier)
        }
        fields["talking_points"] = .array(ScoringRules.rows(for: lead).filter { $0.points > 0 }.map { .string($0.label) })
        return .object(fields)
    }

    static func seniority(_ lead: Lead) -> String {
        guard let title = lead.title?.lowercased() else { return "unknown" }
        let names = ["c-level", "vp", "director", "manager"]
        for (index, entry) in ScoringRules.seniority.enumerated() where entry.words.contains(where: { ScoringRules.containsWord(title, $0) }) {
            return names[index]
        }
        return "individual contributor"
    }

    static func sizeBand(_ size: Int?) -> String {
        switch size {
        case nil: return "unknown"
        case let size? where size <= 10: return "1-10"
        case let size? where size <= 50: return "11-50"
        case let size? where size <= 200: return "51-200"
        case let size? where size <= 1000: return "201-1000"
        case let size? where size <= 5000: return "1001-5000"
        default: return "5000+"
        }
    }
}

/// A growth strategy without an LLM: priority by score, channels by seniority, next steps by
/// what the lead did.
enum GrowthTemplate {
    static func strategy(_ lead: Lead, qualification: JSONValue) -> JSONValue {
        let score = qualification["score"]?.doubleValue ?? 0
        let priority = score >= 0.8 ? "high" : score >= 0.65 ? "medium" : "low"
        let seniority = Enrichment.seniority(lead)
        let channels: [String] = seniority == "c-level" || seniority == "vp"
            ? ["personal email from an account executive", "LinkedIn", "executive briefing"]
            : ["email sequence", "product demo", "webinar invitation"]
        let signals = Set(lead.signals.map { ScoringRules.signalAliases[$0.lowercased().replacingSpaces()] ?? $0.lowercased().replacingSpaces() })
        var steps: [String] = []
        if signals.contains("demo_request") || signals.contains("contact_sales") {
            steps.append("Book the requested call within one business day")
        }
        if signals.contains("trial_signup") { steps.append("Check trial usage and offer onboarding help") }
        if signals.contains("pricing_page") || signals.contains("comparison_page") {
            steps.append("Send pricing and a comparison with the alternatives they looked at")
        }
        steps.append(priority == "high" ? "Assign an account executive today" : "Add to a nurture sequence and review in two weeks")
        let who = [lead.name, lead.title.map { "(\($0))" }, lead.company.map { "at \($0)" }].compactMap { $0 }.joined(separator: " ")
        return [
            "method": "template", "priority": .string(priority),
            "approach": .string("\(priority.prefix(1).uppercased() + priority.dropFirst())-priority outreach to \(who.isEmpty ? "lead \(lead.id)" : who)"),
            "channels": .array(channels.map { .string($0) }), "next_steps": .array(steps.map { .string($0) }),
        ]
    }
}

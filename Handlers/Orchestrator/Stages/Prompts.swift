import WorkerJSON

/// What the LLM is told, and the schemas its answers must match (OpenAI's strict mode: every
/// property required, no others).
enum Prompts {
    static let qualificationSystem = """
        You qualify B2B sales leads. Judge the lead by BANT (budget, authority, need, timeline), with fit (who they are) \
        and intent (what they did). Answer with a score from 0 (no fit) to 1 (buy now), the reasons for it, and one \
        sentence per BANT part. Answer only with JSON matching the schema.
        """
    static let enrichmentSystem = """
        You research B2B sales leads. From the lead and the documentation given, describe the company, its likely size \
        band, its pain points our product addresses and talking points for a first call. Answer only with JSON matching the schema.
        """
    static let strategySystem = """
        You plan how to approach a qualified B2B sales lead. Give a priority, an approach, the channels to use and the \
        next steps, concrete and short. Answer only with JSON matching the schema.
        """

    /// Documentation is cut to this many characters in a prompt.
    static let maxContextCharacters = 6000

    static func leadMessage(_ lead: Lead, context: JSONValue = .null, qualification: JSONValue? = nil, enrichment: JSONValue? = nil) -> String {
        var text = "Lead:\n" + ((try? lead.data.jsonString()) ?? "{}")
        if let qualification, let json = try? qualification.jsonString() { text += "\n\nQualification:\n" + json }
        if let enrichment, let json = try? enrichment.jsonString() { text += "\n\nEnrichment:\n" + json }
        if let content = context["content"]?.stringValue, !content.isEmpty {
            // Cut by Unicode scalars: cutting by Characters walks grapheme breaks through the text.
            text += "\n\nProduct documentation:\n" + String(content.unicodeScalars.prefix(maxContextCharacters))
        }
        return text
    }

    /// The text stored in memory: what a later search for the lead should match.
    static func memoryText(_ lead: Lead, qualification: JSONValue) -> String {
        var parts: [String] = []
        if let name = lead.name { parts.append(name) }
        if let title = lead.title { parts.append(title) }
        if let company = lead.company { parts.append("at \(company)") }
        if let industry = lead.industry { parts.append("(\(industry))") }
        var text = parts.isEmpty ? "Lead \(lead.id)" : parts.joined(separator: " ")
        if let score = qualification["score"]?.doubleValue { text += "; qualification score \(score)" }
        if let reasons = qualification["reasons"]?.arrayValue?.compactMap({ $0.stringValue }), !reasons.isEmpty {
            text += ": " + reasons.joined(separator: "; ")
        }
        return text
    }

    private static func object(_ properties: [String: JSONValue]) -> JSONValue {
        [
            "type": "object", "additionalProperties": false, "properties": .object(properties),
            "required": .array(properties.keys.sorted().map { .string($0) }),
        ]
    }
    private static let shortText: JSONValue = ["type": "string", "maxLength": 500]
    private static func list(max: Int) -> JSONValue { ["type": "array", "items": shortText, "maxItems": .integer(Int64(max))] }

    static let qualificationSchema = object([
        "score": ["type": "number", "minimum": 0, "maximum": 1],
        "reasons": ["type": "array", "items": shortText, "minItems": 1, "maxItems": 10],
        "bant": object(["budget": shortText, "authority": shortText, "need": shortText, "timeline": shortText]),
    ])
    static let enrichmentSchema = object([
        "company_summary": shortText, "company_size_band": shortText, "pain_points": list(max: 8), "talking_points": list(max: 8),
    ])
    static let strategySchema = object([
        "priority": ["type": "string", "enum": ["high", "medium", "low"]],
        "approach": shortText, "channels": list(max: 6), "next_steps": list(max: 8),
    ])
}

import CurlHTTP
import WorkerJSON

/// A lead as a job gives it (`lead_data`): the fields the rules read, typed and checked, plus
/// the whole object as given (the LLM sees everything, unknown fields included).
struct Lead: Equatable, Sendable {
    var id: String
    var name: String?
    var email: String?
    var title: String?
    var company: String?
    /// Employees: a number, or a range such as "201-1000", which counts as its lower end.
    var companySize: Int?
    var industry: String?
    /// Stated budget, in the lead's currency.
    var budget: Double?
    /// When they want to buy ("this quarter", "6 months"); free text.
    var timeline: String?
    /// What they did: "demo_request", "pricing_page", …
    var signals: [String] = []
    var unsubscribed = false
    /// The object as given.
    var data: JSONValue

    static let maxIDLength = 256
    /// The serialized `lead_data` a job may carry (it is stored and sent to the LLM).
    static let maxBytes = 64 << 10

    /// A lead id as kept: trimmed, in Unicode NFC, so "café" typed precomposed or decomposed is one
    /// lead (one workflow, one memory key; PostgreSQL compares text byte by byte, the memory
    /// worker keys in NFC).
    static func normalizedID(_ text: String) -> String {
        let trimmed = text.trimmingSpaces()
        if trimmed.utf8.allSatisfy({ $0 < 0x80 }) { return trimmed }
        return String(decoding: trimmed._nfcCodeUnits, as: UTF8.self)
    }

    static func parse(_ value: JSONValue?, at path: String = "input.lead_data") throws(OrchestratorError) -> Lead {
        guard let value, case .object(let fields) = value else {
            throw .input("\(path) must be an object with at least an \"id\", got \(value?.typeName ?? "nothing")")
        }
        let id: String
        switch fields["id"] {
        case .string(let text)?:
            id = normalizedID(text)
        case let number? where number.intValue != nil:
            id = String(number.intValue!)
        case nil, .null?:
            throw .input("\(path).id is missing: every lead needs an id (it is the workflow's idempotency key)")
        case let other?:
            throw .input("\(path).id must be a string or a whole number, got \(other.typeName)")
        }
        guard !id.isEmpty, id.utf8.count <= maxIDLength else {
            throw .input("\(path).id must be 1 to \(maxIDLength) bytes, got \(id.utf8.count)")
        }
        let size = (try? value.serialized().count) ?? Int.max
        guard size <= maxBytes else { throw .input("\(path) is \(size) bytes; at most \(maxBytes) are taken") }

        func text(_ name: String) throws(OrchestratorError) -> String? {
            guard let field = fields[name], field != .null else { return nil }
            guard let string = field.stringValue else { throw .input("\(path).\(name) must be a string, got \(field.typeName)") }
            let trimmed = string.trimmingSpaces()
            return trimmed.isEmpty ? nil : trimmed
        }
        var lead = Lead(id: id, data: value)
        lead.name = try text("name")
        lead.email = try text("email")
        lead.title = try text("title")
        lead.company = try text("company")
        lead.industry = try text("industry")
        lead.timeline = try text("timeline")
        switch fields["company_size"] {
        case nil, .null?: break
        case let number? where number.doubleValue != nil:
            guard let size = number.doubleValue, size >= 0, size < 1e9 else {
                throw .input("\(path).company_size must be a number of employees, got \(number)")
            }
            lead.companySize = Int(size)
        case .string(let range)?:
            let digits = range.prefix { $0.isNumber }
            guard let lower = Int(digits) else {
                throw .input("\(path).company_size must be a number or a range such as \"201-1000\", got \"\(range)\"")
            }
            lead.companySize = lower
        case let other?:
            throw .input("\(path).company_size must be a number or a range such as \"201-1000\", got \(other.typeName)")
        }
        switch fields["budget"] {
        case nil, .null?: break
        case let number? where number.doubleValue != nil:
            guard let budget = number.doubleValue, budget >= 0, budget.isFinite else {
                throw .input("\(path).budget must be a non-negative number, got \(number)")
            }
            lead.budget = budget
        case let other?:
            throw .input("\(path).budget must be a number, got \(other.typeName)")
        }
        for name in ["signals", "intent_signals"] {
            guard let field = fields[name], field != .null else { continue }
            guard let list = field.arrayValue else { throw .input("\(path).\(name) must be a list of strings, got \(field.typeName)") }
            for (index, item) in list.enumerated() {
                guard let signal = item.stringValue else { throw .input("\(path).\(name)[\(index)] must be a string, got \(item.typeName)") }
                lead.signals.append(signal)
            }
        }
        switch fields["unsubscribed"] {
        case nil, .null?: break
        case .bool(let flag)?: lead.unsubscribed = flag
        case let other?: throw .input("\(path).unsubscribed must be true or false, got \(other.typeName)")
        }
        return lead
    }

    /// The part of the e-mail address after `@`, lower-cased.
    var emailDomain: String? {
        guard let email, let at = email.lastIndex(of: "@") else { return nil }
        let domain = email[email.index(after: at)...].lowercased()
        return domain.isEmpty ? nil : domain
    }
}

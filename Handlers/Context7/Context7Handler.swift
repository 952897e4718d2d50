import CurlHTTP
import Logging
import RedisClient
import WorkerCache
import WorkerJSON
import WorkerRuntime

/// Library documentation look-ups against Context7's API for agents (`Handlers/Context7`).
struct Context7Handler: RawJobHandler {
    let upstream: Context7Upstream
    let redis: RedisClient?

    init(configuration: Context7Configuration, http: CurlHTTPClient = CurlHTTPClient(name: "context7"), redis: RedisClient?) {
        self.upstream = Context7Upstream(configuration: configuration, http: http)
        self.redis = redis
    }

    /// Redis is checked, not required: without it the cache and rate limits still answer
    /// (uncached, counted per process), so an outage is a warning, never a failed start.
    func start() async throws {
        let logger = Logger(label: "context7")
        logger.info("Context7 API: \(upstream.configuration.baseURL) (\(upstream.configuration.apiKey == nil ? "anonymous, lower limits" : "with CONTEXT7_API_KEY"))")
        guard let redis else { return }
        do {
            try await redis.ping()
        } catch {
            // The cache and the rate limits skip Redis from the first job on, instead of each
            // finding the outage again with a timeout of its own.
            RedisAvailability.shared(for: redis).failed()
            logger.warning("Redis is not answering yet; jobs run uncached until it does: \(error)")
        }
    }

    func shutdown() async throws {
        await upstream.http.shutdown()
        await redis?.shutdown()
    }

    func handle(_ job: Job, output: JobOutputWriter, context: JobContext) async throws {
        try output.respond(try await run(try Context7Request.parse(job.input), context: context))
    }

    func run(_ request: Context7Request, context: JobContext) async throws -> JSONValue {
        switch request {
        case .resolveLibrary(let name, let query, let asText):
            let libraries = try await searchLibraries(name: name, query: query, context: context)
            return asText ? .string(Context7Text.libraries(libraries)) : ["libraries": .array(libraries)]

        case .getDocs(let id, let query, let tokens, let asText):
            var libraryID = id
            var answer = try await upstream.get("/v2/context", query: [("libraryId", id), ("query", query), ("type", "txt")], context: context)
            if case .redirected(let target) = answer {
                // Followed once, and only to something that is a library id.
                guard Context7Request.isLibraryID(target) else {
                    throw Context7Error.upstream("Context7 redirected \(id) to '\(target)', which is not a library id")
                }
                context.logger.info("Context7 moved \(id) to \(target)")
                libraryID = target
                answer = try await upstream.get(
                    "/v2/context", query: [("libraryId", target), ("query", query), ("type", "txt")], context: context)
                if case .redirected(let again) = answer {
                    throw Context7Error.upstream("Context7 redirected \(id) to \(target) and then again to \(again); use resolve_library to find its id")
                }
            }
            var content = ""
            var found = true
            switch answer {
            case .ok(let body): content = String(decoding: body, as: UTF8.self)
            case .notFound: found = false
            case .redirected: break
            }
            var truncated = false
            if let tokens { (content, truncated) = DocsTrimmer.trim(content, tokens: tokens) }
            if asText { return .string(content.isEmpty ? Context7Text.noDocumentation : content) }
            var result: [String: JSONValue] = ["library_id": .string(libraryID), "content": .string(content), "found": .bool(found && !content.isEmpty)]
            if libraryID != id { result["redirected_from"] = .string(id) }
            if tokens != nil { result["truncated"] = .bool(truncated) }
            return .object(result)
        }
    }

    private func searchLibraries(name: String, query: String, context: JobContext) async throws -> [JSONValue] {
        let answer = try await upstream.get("/v2/libs/search", query: [("libraryName", name), ("query", query)], context: context)
        switch answer {
        case .notFound, .redirected:
            return []
        case .ok(let body):
            let parsed: JSONValue
            do {
                parsed = try JSONValue.parse(body)
            } catch {
                throw Context7Error.upstream("Context7's library search answered with malformed JSON (\(error)): \(Context7Upstream.excerpt(body))")
            }
            guard let results = parsed["results"]?.arrayValue else {
                throw Context7Error.upstream("Context7's library search answer has no \"results\" list: \(Context7Upstream.excerpt(body))")
            }
            var libraries: [JSONValue] = []
            var problems: [String] = []
            for (index, entry) in results.enumerated() {
                if let problem = Self.problem(with: entry) {
                    problems.append("results[\(index)] \(problem)")
                } else if let library = Self.library(entry) {
                    libraries.append(library)
                }
            }
            guard !problems.isEmpty else { return libraries }
            let listed = problems.prefix(3).joined(separator: "; ") + (problems.count > 3 ? "; …" : "")
            guard !libraries.isEmpty else {
                throw Context7Error.upstream("Context7's library search answered no entry this handler can pass on: \(listed)")
            }
            let logger = context.logger
            logger.warning("Context7's library search: skipped \(problems.count) of \(results.count) entries: \(listed)")
            return libraries
        }
    }

    static let libraryFields = ["id", "title", "description", "totalSnippets", "trustScore", "benchmarkScore", "versions", "stars", "lastUpdateDate"]

    /// The JSON type Context7 documents for each field passed on (`docs/context7.md`).
    static let libraryFieldTypes: [(name: String, type: FieldType)] = [
        ("id", .string), ("title", .string), ("description", .string), ("totalSnippets", .number), ("trustScore", .number),
        ("benchmarkScore", .number), ("versions", .strings), ("stars", .number), ("lastUpdateDate", .string),
    ]

    enum FieldType {
        case string, number, strings

        func accepts(_ value: JSONValue) -> Bool {
            switch self {
            case .string: return value.stringValue != nil
            case .number: return value.doubleValue != nil
            case .strings: return value.arrayValue?.allSatisfy { $0.stringValue != nil } ?? false
            }
        }

        var name: String {
            switch self {
            case .string: return "a string"
            case .number: return "a number"
            case .strings: return "a list of strings"
            }
        }
    }

    /// Why an entry of the search answer cannot be passed on, nil when it can: an object with an
    /// id, each field of its documented type or absent (null counts as absent).
    static func problem(with entry: JSONValue) -> String? {
        guard case .object(let fields) = entry else { return "is \(shown(entry)), not an object" }
        guard let id = fields["id"], id != .null else { return "has no id" }
        let label = id.stringValue.map { "(\($0)) " } ?? ""
        for (name, type) in libraryFieldTypes {
            guard let value = fields[name], value != .null, !type.accepts(value) else { continue }
            return "\(label)has \(name) = \(shown(value)), not \(type.name)"
        }
        return nil
    }

    /// A value as an error shows it: scalars as JSON (cut at 40 characters), containers by kind.
    private static func shown(_ value: JSONValue) -> String {
        switch value {
        case .array: return "an array"
        case .object: return "an object"
        default:
            let text = (try? value.serialized()).map { String(decoding: $0, as: UTF8.self) } ?? value.typeName
            return text.count > 40 ? String(text.prefix(40)) + "…" : text
        }
    }

    /// One library in our shape: every field present (null when Context7 left it out). Check
    /// the entry with `problem(with:)` first.
    static func library(_ value: JSONValue) -> JSONValue? {
        guard case .object(let fields) = value, fields["id"]?.stringValue != nil else { return nil }
        return .object(Dictionary(uniqueKeysWithValues: libraryFields.map { ($0, fields[$0] ?? .null) }))
    }

    /// Which answers the cache keeps, and which only briefly ("nothing found").
    static let cachePolicy = ResponseCachePolicy(isNegative: { answer in
        if let libraries = answer["libraries"]?.arrayValue { return libraries.isEmpty }
        if let found = answer["found"]?.boolValue { return !found }
        if let text = answer.stringValue { return text == Context7Text.noLibraries || text == Context7Text.noDocumentation }
        return false
    })
}

import WorkerJSON

/// Answers in the text shapes of Context7's own MCP server, for agents configured for it
/// (`resolve-library-id`, `query-docs`).
enum Context7Text {
    static let noLibraries = "No libraries found matching the provided name."
    static let noDocumentation =
        "Documentation not found or not finalized for this library. This might have happened because you used an invalid "
        + "Context7-compatible library ID. To get a valid Context7-compatible library ID, use the 'resolve-library-id' tool "
        + "with the package name you wish to retrieve documentation for."

    static func libraries(_ libraries: [JSONValue]) -> String {
        guard !libraries.isEmpty else { return noLibraries }
        let entries = libraries.map { library -> String in
            var lines = [
                "- Title: \(library["title"]?.stringValue ?? "")",
                "- Context7-compatible library ID: \(library["id"]?.stringValue ?? "")",
                "- Description: \(library["description"]?.stringValue ?? "")",
            ]
            if let snippets = library["totalSnippets"]?.intValue, snippets >= 0 { lines.append("- Code Snippets: \(snippets)") }
            lines.append("- Source Reputation: \(reputation(library["trustScore"]?.doubleValue))")
            if let score = library["benchmarkScore"]?.doubleValue, score > 0 { lines.append("- Benchmark Score: \(format(score))") }
            let versions = library["versions"]?.arrayValue?.compactMap(\.stringValue) ?? []
            if !versions.isEmpty { lines.append("- Versions: \(versions.joined(separator: ", "))") }
            return lines.joined(separator: "\n")
        }
        return "Available Libraries:\n\n" + entries.joined(separator: "\n----------\n")
    }

    static func reputation(_ trust: Double?) -> String {
        guard let trust else { return "Unknown" }
        if trust >= 7 { return "High" }
        if trust >= 4 { return "Medium" }
        if trust >= 0 { return "Low" }
        return "Unknown"
    }

    private static func format(_ number: Double) -> String {
        number == number.rounded() ? String(Int(number)) : String(number)
    }
}

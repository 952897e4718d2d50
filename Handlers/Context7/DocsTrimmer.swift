/// Cuts Context7's text documentation to about a token budget at snippet boundaries, so no
/// code block is cut in half. Context7 separates snippets with a rule line (a line of dashes).
///
/// Tokens are estimated as one per 4 bytes of UTF-8, the usual rule of thumb for English text
/// and code with BPE tokenizers (Context7's own `tokens` parameter of API v1 counted the same
/// way). The first snippet is always kept whole, even when it alone is over the budget.
enum DocsTrimmer {
    static let bytesPerToken = 4

    static func estimatedTokens(_ text: Substring.UTF8View) -> Int {
        (text.count + bytesPerToken - 1) / bytesPerToken
    }

    /// The content within `tokens`, and whether anything was cut.
    static func trim(_ content: String, tokens budget: Int) -> (content: String, truncated: Bool) {
        let snippets = split(content)
        var kept = content.startIndex
        var used = 0
        for (index, snippet) in snippets.enumerated() {
            let cost = estimatedTokens(content[kept..<snippet.upperBound].utf8)
            if index > 0, used + cost > budget { return (String(content[..<separatorStart(content, before: snippet.lowerBound)]), true) }
            used += cost
            kept = snippet.upperBound
        }
        return (content, false)
    }

    /// The snippets' ranges; each after the first starts at its separator line.
    static func split(_ content: String) -> [Range<String.Index>] {
        var ranges: [Range<String.Index>] = []
        var start = content.startIndex
        var lineStart = content.startIndex
        while lineStart < content.endIndex {
            let lineEnd = content[lineStart...].firstIndex(of: "\n") ?? content.endIndex
            let line = content[lineStart..<lineEnd]
            if line.count >= 10, line.allSatisfy({ $0 == "-" }), lineStart > start {
                ranges.append(start..<lineStart)
                start = lineStart
            }
            lineStart = lineEnd < content.endIndex ? content.index(after: lineEnd) : content.endIndex
        }
        if start < content.endIndex { ranges.append(start..<content.endIndex) }
        return ranges
    }

    /// Where the text before a separator ends, without the blank lines leading up to it.
    private static func separatorStart(_ content: String, before index: String.Index) -> String.Index {
        var end = index
        while end > content.startIndex, content[content.index(before: end)].isNewline { end = content.index(before: end) }
        return end
    }
}

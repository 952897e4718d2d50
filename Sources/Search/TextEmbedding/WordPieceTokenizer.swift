@_spi(_Unicode) import Swift

/// BERT's tokenizer exactly as Hugging Face's `tokenizers` runs it for these models:
/// the BERT normalizer (drop control characters, whitespace to spaces, spaces around CJK
/// ideographs, accents stripped and text lower-cased when configured), the BERT pre-tokenizer
/// (split on whitespace and around each punctuation character), then greedy longest-match
/// WordPiece with `##` continuations, `[UNK]` for a word that cannot be pieced or is over 100
/// characters, and `[CLS] … [SEP]` around at most `maxLength` ids.
struct WordPieceTokenizer: Sendable {
    let vocabulary: [String: Int32]
    let lowercase: Bool
    let stripAccents: Bool
    let splitChinese: Bool
    let unknown: Int32
    let classify: Int32
    let separator: Int32
    static let maxWordCharacters = 100

    init(vocabulary: [String: Int32], lowercase: Bool, stripAccents: Bool?, splitChinese: Bool) throws(EmbeddingModelError) {
        self.vocabulary = vocabulary
        self.lowercase = lowercase
        self.stripAccents = stripAccents ?? lowercase
        self.splitChinese = splitChinese
        guard let unknown = vocabulary["[UNK]"], let classify = vocabulary["[CLS]"], let separator = vocabulary["[SEP]"] else {
            throw .invalid("vocab.txt", "it lacks one of [UNK], [CLS] and [SEP]")
        }
        self.unknown = unknown
        self.classify = classify
        self.separator = separator
    }

    /// `vocab.txt`: one token per line (LF or CRLF), the id is the line number. `ids` counts the
    /// lines (a final newline ends the last one), which must be the model's `vocab_size` exactly.
    static func vocabulary(_ text: String) -> (tokens: [String: Int32], ids: Int) {
        var vocabulary: [String: Int32] = [:]
        var id = 0
        for line in text.utf8.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            var bytes = line
            if bytes.last == UInt8(ascii: "\r") { bytes = bytes.dropLast() }
            let token = String(decoding: bytes, as: UTF8.self)
            if !token.isEmpty, vocabulary[token] == nil { vocabulary[token] = Int32(clamping: id) }
            id += 1
        }
        return (vocabulary, text.utf8.last == UInt8(ascii: "\n") ? id - 1 : id)
    }

    /// The ids the model sees: `[CLS]`, at most `maxLength - 2` word pieces, `[SEP]`.
    func encode(_ text: String, maxLength: Int) -> [Int32] {
        var ids: [Int32] = [classify]
        let budget = max(0, maxLength - 2)
        words: for word in words(normalized(text)) {
            for id in pieces(word) {
                guard ids.count - 1 < budget else { break words }
                ids.append(id)
            }
        }
        ids.append(separator)
        return ids
    }

    // MARK: Normalizer

    func normalized(_ text: String) -> [Unicode.Scalar] {
        var cleaned: [Unicode.Scalar] = []
        cleaned.reserveCapacity(text.unicodeScalars.count)
        for scalar in text.unicodeScalars {
            if scalar.value == 0 || scalar.value == 0xFFFD || Self.isControl(scalar) { continue }
            if Self.isWhitespace(scalar) {
                cleaned.append(" ")
            } else if splitChinese, Self.isChinese(scalar) {
                cleaned.append(" ")
                cleaned.append(scalar)
                cleaned.append(" ")
            } else {
                cleaned.append(scalar)
            }
        }
        if stripAccents, !cleaned.allSatisfy(\.isASCII) {
            var view = String.UnicodeScalarView()
            view.append(contentsOf: cleaned)
            cleaned = String(view)._nfd.filter { $0.properties.generalCategory != .nonspacingMark }
        }
        if lowercase {
            var lowered: [Unicode.Scalar] = []
            lowered.reserveCapacity(cleaned.count)
            for scalar in cleaned {
                if scalar.isASCII {
                    let value = scalar.value
                    lowered.append(value >= 0x41 && value <= 0x5A ? Unicode.Scalar(value + 0x20)! : scalar)
                } else {
                    lowered.append(contentsOf: scalar.properties.lowercaseMapping.unicodeScalars)
                }
            }
            cleaned = lowered
        }
        return cleaned
    }

    /// Tab, newline and carriage return are whitespace here, not control characters.
    static func isControl(_ scalar: Unicode.Scalar) -> Bool {
        if scalar == "\t" || scalar == "\n" || scalar == "\r" { return false }
        switch scalar.properties.generalCategory {
        case .control, .format, .surrogate, .privateUse, .unassigned: return true
        default: return false
        }
    }

    static func isWhitespace(_ scalar: Unicode.Scalar) -> Bool {
        scalar == "\t" || scalar == "\n" || scalar == "\r" || scalar.properties.isWhitespace
    }

    /// CJK Unified Ideographs and their extensions and compatibility blocks (not Hangul, kana).
    static func isChinese(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x4E00...0x9FFF, 0x3400...0x4DBF, 0x20000...0x2A6DF, 0x2A700...0x2B73F, 0x2B740...0x2B81F, 0x2B820...0x2CEAF,
            0xF900...0xFAFF, 0x2F800...0x2FA1F:
            return true
        default:
            return false
        }
    }

    // MARK: Pre-tokenizer

    /// Words: runs between whitespace, with every punctuation character a word of its own.
    func words(_ scalars: [Unicode.Scalar]) -> [ArraySlice<Unicode.Scalar>] {
        var words: [ArraySlice<Unicode.Scalar>] = []
        var start = 0
        for (index, scalar) in scalars.enumerated() {
            if scalar == " " || scalar.properties.isWhitespace {
                if start < index { words.append(scalars[start..<index]) }
                start = index + 1
            } else if Self.isPunctuation(scalar) {
                if start < index { words.append(scalars[start..<index]) }
                words.append(scalars[index...index])
                start = index + 1
            }
        }
        if start < scalars.count { words.append(scalars[start...]) }
        return words
    }

    /// ASCII punctuation (symbols such as `$`, `+`, `^` included) and Unicode's P* categories.
    static func isPunctuation(_ scalar: Unicode.Scalar) -> Bool {
        let value = scalar.value
        if (33...47).contains(value) || (58...64).contains(value) || (91...96).contains(value) || (123...126).contains(value) {
            return true
        }
        switch scalar.properties.generalCategory {
        case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation, .initialPunctuation,
            .finalPunctuation, .otherPunctuation:
            return true
        default:
            return false
        }
    }

    // MARK: WordPiece

    func pieces(_ word: ArraySlice<Unicode.Scalar>) -> [Int32] {
        guard word.count <= Self.maxWordCharacters else { return [unknown] }
        var ids: [Int32] = []
        var start = word.startIndex
        while start < word.endIndex {
            var end = word.endIndex
            var found: Int32?
            while start < end {
                var candidate = start == word.startIndex ? "" : "##"
                candidate.unicodeScalars.append(contentsOf: word[start..<end])
                if let id = vocabulary[candidate] {
                    found = id
                    break
                }
                end -= 1
            }
            guard let found else { return [unknown] }
            ids.append(found)
            start = end
        }
        return ids
    }
}

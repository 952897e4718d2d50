#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Parameters on their way to libpq, which takes each value as a C string: text holding a NUL
/// character would end there without a word (`"L1\0anything"` sent as `"L1"`, so a lookup by it
/// finds lead `L1`). Such a value is refused before anything is sent, naming its position.
enum PostgresParameters {
    /// The parameters in PostgreSQL's text format (nil is NULL), checked.
    static func texts(_ parameters: [any PostgresBindable], server: String, sql: String) throws(PostgresError) -> [String?] {
        let texts = parameters.map { $0.postgresText }
        try check(texts, server: server, sql: sql)
        return texts
    }

    /// Throws for the first value that holds a NUL character.
    static func check(_ texts: [String?], server: String, sql: String) throws(PostgresError) {
        for (index, text) in texts.enumerated() {
            guard let text, containsNUL(text) else { continue }
            throw .nulInParameter(server, PostgresConnection.describe(sql), position: index + 1)
        }
    }

    /// One `memchr` over a native string's bytes (a byte loop for the others).
    static func containsNUL(_ text: String) -> Bool {
        let utf8 = text.utf8
        let found: Bool? = utf8.withContiguousStorageIfAvailable { bytes in
            guard let base = bytes.baseAddress, !bytes.isEmpty else { return false }
            return memchr(base, 0, bytes.count) != nil
        }
        return found ?? utf8.contains(0)
    }
}

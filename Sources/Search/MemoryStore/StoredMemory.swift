/// One stored memory: the text, its metadata (JSON text, kept as given), the attributes its
/// metadata filters match on, and its vector.
public struct StoredMemory: Sendable, Equatable {
    public var key: String
    public var content: String
    public var metadata: String
    public var attributes: [String: String]
    public var vector: [Float]

    public init(key: String, content: String, metadata: String = "{}", attributes: [String: String] = [:], vector: [Float]) {
        self.key = key
        self.content = content
        self.metadata = metadata
        self.attributes = attributes
        self.vector = vector
    }
}

/// A change recorded in the write-ahead log.
enum LogEntry: Sendable, Equatable {
    case upsert(StoredMemory)
    case delete(String)

    func encoded() -> [UInt8] {
        var writer = ByteWriter()
        switch self {
        case .upsert(let memory):
            writer.u8(1)
            writer.record(memory)
            writer.floats(memory.vector)
        case .delete(let key):
            writer.u8(2)
            writer.string(key)
        }
        return writer.bytes
    }

    static func decode(_ reader: inout ByteReader) throws(StoreError) -> LogEntry {
        switch try reader.u8() {
        case 1:
            var memory = try reader.record()
            memory.vector = try reader.floats()
            return .upsert(memory)
        case 2:
            return .delete(try reader.string())
        case let other:
            throw .corrupt("unknown log entry type \(other)")
        }
    }
}

/// A memory's key, content, metadata and attributes, as the log and the snapshot both store them.
extension ByteWriter {
    mutating func record(_ memory: StoredMemory) {
        string(memory.key)
        string(memory.content)
        string(memory.metadata)
        u32(UInt32(memory.attributes.count))
        for (name, value) in memory.attributes.sorted(by: { $0.key < $1.key }) {
            string(name)
            string(value)
        }
    }
}

extension ByteReader {
    /// A record without its vector.
    mutating func record() throws(StoreError) -> StoredMemory {
        let key = try string()
        let content = try string()
        let metadata = try string()
        var attributes: [String: String] = [:]
        for _ in 0..<(try u32()) { attributes[try string()] = try string() }
        return StoredMemory(key: key, content: content, metadata: metadata, attributes: attributes, vector: [])
    }
}
